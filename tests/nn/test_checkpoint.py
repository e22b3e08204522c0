"""state_dict / load_state_dict and .npz checkpoints: round trips on every backend, one error
naming every mismatch, damaged files, atomic writes, and no pickle."""
import os
import re

import numpy as np
import pytest

import minidl as md
from minidl import nn


def make_model(seed, device="cpu", hidden=8):
    md.manual_seed(seed)
    model = nn.Sequential(nn.Embedding(6, 4, padding_idx=0), nn.Linear(4, hidden), nn.GELU(),
                          nn.LayerNorm(hidden), nn.Linear(hidden, 2))
    return model.to(device=device)


IDS = np.array([[1, 2, 0], [5, 4, 3]])


def outputs(model):
    with md.no_grad():
        return model(IDS).numpy()


def test_state_dict_round_trip(device):
    source, target = make_model(0, device), make_model(1, device)
    assert not np.allclose(outputs(source), outputs(target))
    state = source.state_dict()
    assert list(state) == ["0.weight", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    target.load_state_dict(state)
    assert np.array_equal(outputs(target), outputs(source))
    state["1.weight"][:] = 0  # the model keeps its own copy
    assert np.array_equal(outputs(target), outputs(source))


def test_state_dict_is_a_copy(device):
    model = make_model(0, device)
    state = model.state_dict()
    state["1.bias"][:] = 123.0
    assert not np.any(model.state_dict()["1.bias"] == 123.0)


def test_state_moves_across_backends():
    source, target = make_model(0, "torch"), make_model(1, "cpu")
    target.load_state_dict(source.state_dict())
    assert all(p.device == "cpu" for p in target.parameters())
    for name, value in source.state_dict().items():
        assert np.array_equal(target.state_dict()[name], value), name
    # float32 maths on two libraries: equal up to rounding
    np.testing.assert_allclose(outputs(target), outputs(source), rtol=1e-5, atol=1e-6)


def test_save_and_load_round_trip(device, tmp_path):
    path = tmp_path / "model.npz"
    source = make_model(0, device)
    assert source.save(path) == str(path)
    with np.load(path, allow_pickle=False) as archive:  # a plain .npz any NumPy program can read
        assert sorted(archive.files) == sorted(source.state_dict())
    target = make_model(1, device)
    target.load(path)
    assert np.array_equal(outputs(target), outputs(source))


def test_one_error_names_every_mismatch(tmp_path):
    model = make_model(0)
    state = model.state_dict()
    del state["4.bias"]
    state["extra.weight"] = np.zeros(3)
    state["1.weight"] = np.zeros((5, 8))
    before = outputs(model)
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys" in message and "4.bias" in message
    assert "unexpected keys" in message and "extra.weight" in message
    assert "1.weight: state has (5, 8), model has (4, 8)" in message
    assert np.array_equal(outputs(model), before), "nothing is loaded when anything is wrong"


def test_non_strict_skips_missing_and_unexpected_but_not_shape_mismatches():
    model, other = make_model(0), make_model(1)
    state = other.state_dict()
    del state["4.bias"]
    state["extra.weight"] = np.zeros(3)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["4.bias"] and result.unexpected_keys == ["extra.weight"]
    assert np.array_equal(model.state_dict()["4.weight"], other.state_dict()["4.weight"])
    state["1.bias"] = np.zeros(3)
    with pytest.raises(nn.StateDictError, match="1.bias"):
        model.load_state_dict(state, strict=False)


def test_load_from_a_model_of_another_size_names_the_shapes(tmp_path):
    path = make_model(0, hidden=16).save(tmp_path / "big.npz")
    with pytest.raises(nn.StateDictError, match=r"1.weight: state has \(4, 16\), model has \(4, 8\)"):
        make_model(0, hidden=8).load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        make_model(0).load(tmp_path / "nowhere.npz")


@pytest.mark.parametrize("damage", ["truncated", "flipped bytes"])
def test_corrupted_file_is_reported_as_corrupted(tmp_path, damage):
    path = make_model(0).save(tmp_path / "model.npz")
    data = open(path, "rb").read()
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # inside an array's bytes: the zip's CRC check catches it
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 16]) + data[middle + 16:]
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(nn.CheckpointError, match="corrupted.*model.save"):
        make_model(0).load(path)


def test_a_file_that_is_no_zip_at_all_is_not_a_checkpoint_and_a_runs_best_npz_beside_it_is_named(tmp_path):
    """A run's results.json (or any file not begun as a zip) was "corrupted (not a complete .npz archive: truncated
    by an interrupted copy or download ...); copy it again or re-save it"."""
    path = tmp_path / "results.json"
    path.write_text('{"this is": "not a checkpoint"}')
    with pytest.raises(nn.CheckpointError, match=r"results.json' is not a checkpoint \(an .npz written by minidl "
                                                 r"or model.save\)$"):
        make_model(0).load(path)
    best = str(make_model(0).save(tmp_path / "best.npz"))
    with pytest.raises(nn.CheckpointError, match=f"not a checkpoint .*; give the one beside it, {re.escape(best)}$"):
        make_model(0).load(path)
    for size in (0, 3):   # a copy stopped at once is cut short, not someone else's file (nor named as beside itself)
        (tmp_path / "best.npz").write_bytes(open(best, "rb").read()[:size])
        with pytest.raises(nn.CheckpointError, match="best.npz' is corrupted"):
            make_model(0).load(best)
        with pytest.raises(nn.CheckpointError, match=r"not a checkpoint \(an .npz written by minidl or model.save\)$"):
            make_model(0).load(path)   # (the best.npz beside it is no checkpoint either)


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    make_model(0).save(path)
    good = open(path, "rb").read()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", disk_full)
    with pytest.raises(OSError, match="No space"):
        make_model(1).save(path)
    assert open(path, "rb").read() == good
    assert os.listdir(tmp_path) == ["model.npz"], "no temporary file is left behind"


def test_save_replaces_an_earlier_checkpoint_but_no_other_file(tmp_path):
    """model.save replaced any file at its path without a word: the user's notes, a run's results.json."""
    path = tmp_path / "model.npz"
    path.write_bytes(b"")   # an empty file (tempfile.mkstemp's) is a path to write to
    make_model(0).save(path)
    assert make_model(1).save(path) == str(path)   # the save loop: each epoch's checkpoint over the last
    target = make_model(2)
    target.load(path)
    assert np.allclose(outputs(target), outputs(make_model(1)))
    for name, text in (("notes.txt", "my notes\n"), ("results.json", '{"config": {}}')):
        (tmp_path / name).write_text(text)
        with pytest.raises(OSError) as refused:
            make_model(0).save(tmp_path / name)
        assert str(refused.value) == (f"path {tmp_path / name} is there and was not written by model.save; give "
                                      f"another path, or move the file away first")
        assert (tmp_path / name).read_text() == text


unpickled = []


def _record_unpickling():
    unpickled.append(True)
    return 0


class Payload:
    """An object whose unpickling would run code (here, harmlessly, _record_unpickling)."""

    def __reduce__(self):
        return _record_unpickling, ()


def test_pickled_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"1.weight": np.array([Payload()], dtype=object)})
    with pytest.raises(nn.CheckpointError, match="pickle"):
        make_model(0).load(path)
    assert unpickled == []


def test_names_that_np_savez_would_reject_are_saved(tmp_path):
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.file = nn.Parameter([1.0, 2.0])  # np.savez(file, **arrays) has a parameter "file"

    Odd().save(tmp_path / "odd.npz")
    model = Odd()
    model.file.data[:] = 0
    model.load(tmp_path / "odd.npz")
    assert model.file.tolist() == [1.0, 2.0]


def test_a_value_that_cannot_be_converted_loads_nothing():
    """A bfloat16 (or string) entry raised torch's own TypeError after the entries before it were copied: the
    model was left half old, half new, though everything is checked before anything is copied."""
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    before = {name: value.copy() for name, value in model.state_dict().items()}
    state = {name: torch.tensor(value) + 1 for name, value in before.items()}
    state["1.bias"] = state["1.bias"].to(torch.bfloat16)
    with pytest.raises(nn.StateDictError, match=r"1.bias: cannot be read as float32 .*; nothing was loaded"):
        model.load_state_dict(state)
    assert all(np.array_equal(before[name], value) for name, value in model.state_dict().items())


def test_a_checkpoint_of_minidl_train_loaded_into_a_bare_model_says_how_to_read_it(tmp_path):
    """model.load(run/best.npz) listed model.* and optim.* keys and advised strict=False, which loads nothing."""
    from minidl.io import write_npz

    path = tmp_path / "best.npz"
    write_npz(path, {"model.weight": np.zeros((2, 2)), "model.bias": np.zeros(2), "optim.0.exp_avg": np.zeros((2, 2)),
                     "meta": np.array("{}")})
    with pytest.raises(nn.StateDictError, match=r"minidl.train.load_classifier\(path\) reads it"):
        nn.Linear(2, 2).load(path)

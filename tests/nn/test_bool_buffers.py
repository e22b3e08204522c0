"""Boolean buffers (pruning masks) are saved packed to 1 bit per entry and come back unchanged."""
import numpy as np
import pytest

import minidl as md
from minidl.io import CheckpointError, read_npz
from minidl.nn import Linear, Module
from minidl.nn.module import pack_bool_arrays, unpack_bool_arrays


def test_pack_round_trip_odd_shapes():
    rng = np.random.default_rng(0)
    arrays = {"a": rng.random((3, 5)) < 0.5, "b": np.array(True), "c": np.zeros((0, 4), bool),
              "d": rng.random(13) < 0.3, "w": rng.standard_normal((2, 3)).astype(np.float32),
              "i": np.arange(4, dtype=np.int8)}
    packed = pack_bool_arrays(arrays)
    assert set(packed) == {"w", "i"} | {f"{k}.__bits__" for k in "abcd"} | {f"{k}.__bits_shape__" for k in "abcd"}
    assert packed["a.__bits__"].dtype == np.uint8 and packed["a.__bits__"].size == 2  # 15 bits
    back = unpack_bool_arrays(packed)
    assert list(back) == ["a", "b", "c", "d", "w", "i"]
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)
    plain = {"w": arrays["w"]}
    assert unpack_bool_arrays(plain) is plain
    packed["a.__bits__"] = packed["a.__bits__"][:1]
    with pytest.raises(CheckpointError, match="a: 1 packed bytes"):
        unpack_bool_arrays(packed)


class _Gated(Module):
    def __init__(self, device=None):
        super().__init__()
        self.linear = Linear(4, 20, device=device)
        self.register_buffer("gate", md.Tensor(np.arange(20) % 3 == 0, device=device))


def test_module_save_packs_boolean_buffers(tmp_path, device):
    md.manual_seed(0)
    model = _Gated(device)
    path = model.save(str(tmp_path / "gated.npz"))
    stored = read_npz(path)
    assert "gate" not in stored and stored["gate.__bits__"].dtype == np.uint8
    md.manual_seed(1)
    fresh = _Gated(device)
    fresh.gate = md.Tensor(np.zeros(20, bool), device=device)
    fresh.load(path)
    assert fresh.gate.dtype == "bool"
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    again = _Gated(device)
    again.load_state_dict(stored)  # a state read with read_npz unpacks the same way
    np.testing.assert_array_equal(again.gate.numpy(), model.gate.numpy())

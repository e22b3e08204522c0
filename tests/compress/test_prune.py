"""Pruning: exact sparsity, smallest magnitudes removed, masks that survive saving and training,
the cubic schedule, sparse checkpoints that are really smaller, and accuracy kept at 20 %."""
import os

import numpy as np
import pytest

import minidl as md
from minidl.compress.prune import (GradualPruning, apply_masks, cubic_sparsity, format_report, get_mask,
                                   load_pruned, load_sparse, prune_global_magnitude, prune_l1_per_layer,
                                   save_sparse, sparsity_report, weight_matrices)
from minidl.compress.quantize import quantize
from minidl.datasets.toy import two_spirals
from minidl.nn import Linear, ReLU, Sequential
from minidl.optim import Adam


def _mlp(device="cpu", sizes=(64, 128, 128, 10)):
    md.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(a, b, device=device))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def _weights(model):
    return {name: p.numpy().copy() for name, p in model.named_parameters() if name.endswith("weight")}


def _zeros(model):
    return sum(int((w == 0).sum()) for w in _weights(model).values())


@pytest.mark.parametrize("amount", [0.1, 0.2, 0.9])
def test_global_exact_sparsity_and_smallest_removed(device, amount):
    model = _mlp(device)
    before = _weights(model)
    total = sum(w.size for w in before.values())
    report = prune_global_magnitude(model, amount)
    k = round(amount * total)
    assert _zeros(model) == k
    assert report.parameters == total and report.parameters - report.nonzeros == k
    after = _weights(model)
    pruned = np.concatenate([np.abs(before[n])[after[n] == 0] for n in before])
    kept = np.concatenate([np.abs(before[n])[after[n] != 0] for n in before])
    assert pruned.max() <= kept.min()
    for name, w in after.items():  # kept weights unchanged, masks 0/1 matching the zeros
        np.testing.assert_array_equal(w[w != 0], before[name][w != 0])
    for _, module in model.named_modules():
        if isinstance(module, Linear):
            mask = get_mask(module).numpy()
            assert set(np.unique(mask)) <= {0.0, 1.0}
            np.testing.assert_array_equal(mask == 0, module.weight.numpy() == 0)
    biases = [p.numpy() for n, p in model.named_parameters() if n.endswith("bias")]
    assert all(np.count_nonzero(b) == b.size for b in biases)  # biases untouched


def test_per_layer_exact_sparsity(device):
    model = _mlp(device)
    before = _weights(model)
    prune_l1_per_layer(model, 0.2)
    for name, w in _weights(model).items():
        assert int((w == 0).sum()) == round(0.2 * w.size)
        assert np.abs(before[name])[w == 0].max() <= np.abs(before[name])[w != 0].min()
    assert "sparsity" in format_report(sparsity_report(model))


def test_repruning_keeps_old_zeros():
    model = _mlp()
    prune_global_magnitude(model, 0.5)
    first = {n: w == 0 for n, w in _weights(model).items()}
    prune_global_magnitude(model, 0.2)  # a smaller target: nothing comes back
    assert all(np.all(_weights(model)[n][z] == 0) for n, z in first.items())
    assert _zeros(model) == sum(z.sum() for z in first.values())
    prune_global_magnitude(model, 0.7)
    assert all(np.all(_weights(model)[n][z] == 0) for n, z in first.items())
    assert _zeros(model) == round(0.7 * sum(z.size for z in first.values()))
    with pytest.raises(ValueError):
        prune_global_magnitude(model, 1.5)


def test_masks_survive_save_and_load(tmp_path, device):
    model = _mlp(device)
    prune_global_magnitude(model, 0.6)
    path = model.save(str(tmp_path / "dense.npz"))
    fresh = _mlp(device)
    load_pruned(fresh, path)
    x = md.randn(5, 64, device=device)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    for (name, a), (_, b) in zip(model.named_buffers(), fresh.named_buffers()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert _zeros(fresh) == _zeros(model)
    # the other pattern: prune the fresh model at 0 to create all-ones masks, then model.load
    other = _mlp(device)
    prune_global_magnitude(other, 0.0)
    other.load(path)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())


def _train_steps(model, steps, callback=None, device="cpu", lr=1e-2):
    rng = np.random.default_rng(0)
    optimizer = Adam(model.parameters(), lr=lr)
    if callback is not None:
        callback.on_train_begin(model, optimizer)
    for step in range(1, steps + 1):
        x = md.tensor(rng.standard_normal((16, 64)), dtype="float32", device=device)
        y = md.tensor(rng.integers(0, 10, 16), device=device)
        loss = md.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if callback is None:
            apply_masks(model)
        else:
            callback.on_step(step, loss.item())


def test_locked_mask_keeps_zeros_while_training(device):
    model = _mlp(device)
    prune_global_magnitude(model, 0.5)
    zero = {n: w == 0 for n, w in _weights(model).items()}
    _train_steps(model, 5, device=device)
    after = _weights(model)
    assert all(np.all(after[n][z] == 0) for n, z in zero.items())
    assert _zeros(model) == sum(z.sum() for z in zero.values())


def test_gradual_pruning_follows_schedule_then_locks(device):
    model = _mlp(device)
    total = sum(w.size for w in _weights(model).values())
    callback = GradualPruning(initial=0.0, final=0.8, start=2, end=10, every=4)
    _train_steps(model, 6, callback, device=device)  # pruned at 2 and 6
    assert [s for s, _ in callback.history] == [2, 6]
    assert _zeros(model) == round(cubic_sparsity(6, 0.0, 0.8, 2, 10) * total)
    again = GradualPruning(initial=0.0, final=0.8, start=2, end=10, every=4)
    _train_steps(model, 14, again, device=device)  # 2, 6, 10, then locked
    assert _zeros(model) == round(0.8 * total)
    zero = {n: w == 0 for n, w in _weights(model).items()}
    _train_steps(model, 3, GradualPruning(model, final=0.8, start=0, end=0), device=device)
    assert all(np.all(_weights(model)[n][z] == 0) for n, z in zero.items())


def test_gradual_pruning_from_step_0_prunes_to_its_initial_sparsity_before_the_first_step(device):
    """The core's steps count from 1, so start=0 first pruned at step `every`: steps 1-3 trained dense."""
    model = _mlp(device)
    total = sum(w.size for w in _weights(model).values())
    callback = GradualPruning(initial=0.5, final=0.8, start=0, end=12, every=4)
    _train_steps(model, 3, callback, device=device)
    assert callback.history == [(0, 0.5)] and _zeros(model) == round(0.5 * total)


def test_cubic_schedule_hand_computed():
    assert cubic_sparsity(0, 0.0, 0.9, 0, 1000) == 0.0
    assert cubic_sparsity(-5, 0.0, 0.9, 0, 1000) == 0.0
    assert cubic_sparsity(500, 0.0, 0.9, 0, 1000) == pytest.approx(0.9 - 0.9 * 0.125)  # 0.7875
    assert cubic_sparsity(250, 0.0, 0.9, 0, 1000) == pytest.approx(0.9 - 0.9 * 0.421875)  # 0.5203125
    assert cubic_sparsity(1000, 0.0, 0.9, 0, 1000) == pytest.approx(0.9)
    assert cubic_sparsity(5000, 0.0, 0.9, 0, 1000) == pytest.approx(0.9)
    assert cubic_sparsity(150, 0.1, 0.85, 100, 200) == pytest.approx(0.85 - 0.75 * 0.125)


@pytest.mark.parametrize("amount,limit", [(0.5, 0.6), (0.9, 0.25)])
def test_sparse_save_round_trip_and_size(tmp_path, device, amount, limit):
    model = _mlp(device, sizes=(64, 256, 256, 10))
    dense = model.save(str(tmp_path / "dense.npz"))  # the unpruned model: weights and biases only
    prune_global_magnitude(model, amount)
    assert os.path.getsize(model.save(str(tmp_path / "masked.npz"))) > os.path.getsize(dense)  # no smaller
    sparse = save_sparse(model, str(tmp_path / "sparse.npz"))
    ratio = os.path.getsize(sparse) / os.path.getsize(dense)
    assert ratio < limit, ratio
    fresh = _mlp(device, sizes=(64, 256, 256, 10))
    load_sparse(fresh, sparse)
    x = md.randn(7, 64, device=device)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(sparsity_report(fresh).nonzeros, sparsity_report(model).nonzeros)
    for (na, a), (nb, b) in zip(model.named_buffers(), fresh.named_buffers()):
        assert na == nb
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _train_steps(fresh, 2, device=device)  # the reloaded masks still lock
    assert _zeros(fresh) >= _zeros(model)


def test_pruning_trained_mlp_keeps_accuracy():
    X, y = two_spirals(n_per_class=100, noise=0.0, seed=0)
    model = _mlp(sizes=(2, 64, 64, 2))
    optimizer = Adam(model.parameters(), lr=1e-2)
    x, t = md.tensor(X, dtype="float32"), md.tensor(y)
    for _ in range(600):
        loss = md.cross_entropy(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def accuracy():
        with md.no_grad():
            return float((model(x).numpy().argmax(-1) == y).mean())

    before = accuracy()
    assert before >= 0.95
    prune_global_magnitude(model, 0.2)
    assert accuracy() >= before - 0.03


def test_bad_amounts_and_nothing_to_prune_are_refused(device):
    model = _mlp(device)
    for amount in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"amount must lie in \[0, 1\)"):
            prune_global_magnitude(model, amount)
    with pytest.raises(ValueError, match="nothing to prune"):
        prune_global_magnitude(md.nn.LayerNorm(4, device=device), 0.5)
    with pytest.raises(ValueError, match="no Linear or Embedding"):
        weight_matrices(md.nn.LayerNorm(4, device=device))


def test_weight_matrices_include_embedding_tables():
    model = md.nn.Sequential(md.nn.Embedding(50, 8), md.nn.Linear(8, 3))
    assert weight_matrices(model) == ["0.weight", "1.weight"]
    assert weight_matrices(model, embeddings=False) == ["1.weight"]
    report = prune_global_magnitude(model, 0.8, parameters=weight_matrices(model))
    assert report.sparsity == pytest.approx(0.8, abs=1e-3)


def test_sparse_files_are_deflated(tmp_path, device):
    """save_sparse entropy-codes its archive (Deep Compression's last stage): a 10 %-dense
    bitmask holds ~0.47 bits of information per weight, so the file is smaller than the arrays
    it stores, written plainly."""
    from minidl.io import read_npz, write_npz

    model = _mlp(device, sizes=(64, 256, 256, 10))
    prune_global_magnitude(model, 0.9)
    quantize(model)
    sparse = save_sparse(model, str(tmp_path / "sparse.npz"))
    plain = str(tmp_path / "plain.npz")
    write_npz(plain, read_npz(sparse), compress=False)
    assert os.path.getsize(sparse) < 0.85 * os.path.getsize(plain)


def test_pruned_then_quantized_model_saves_sparse_int8(tmp_path, device):
    model = _mlp(device)
    prune_global_magnitude(model, 0.9)
    quantize(model)
    dense = model.save(str(tmp_path / "int8.npz"))
    sparse = save_sparse(model, str(tmp_path / "int8_sparse.npz"))
    assert os.path.getsize(sparse) < 0.5 * os.path.getsize(dense)
    fresh = _mlp(device)
    quantize(fresh)
    load_sparse(fresh, sparse)
    assert not [name for name, _ in fresh.named_buffers() if name.endswith("_mask")]
    x = md.randn(5, 64, device=device)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_gradual_pruning_per_layer_gives_every_weight_the_same_sparsity():
    model = md.nn.Sequential(md.nn.Embedding(200, 16), md.nn.Linear(16, 16), md.nn.Linear(16, 2))
    schedule = GradualPruning(model, 0.0, 0.75, start=0, end=4, every=2, parameters=weight_matrices(model),
                              threshold="layer")
    for step in range(1, 6):
        schedule.on_step(step)
    for row in sparsity_report(model, names=weight_matrices(model)).rows:
        assert row.sparsity == pytest.approx(0.75, abs=0.02), row
    assert schedule.report.scope == "all" and schedule.threshold == "layer"
    with pytest.raises(ValueError, match="scope must be"):
        GradualPruning(model, scope="everywhere")
    with pytest.raises(ValueError, match="threshold must be"):
        GradualPruning(model, threshold="everywhere")
    for bad in (dict(final=1.5), dict(initial=-0.1), dict(initial=0.8, final=0.2), dict(start=10, end=5)):
        with pytest.raises(ValueError, match="0 <= initial <= final < 1 .* 0 <= start <= end"):   # failed mid-run,
            GradualPruning(model, **bad)                                                          # or never pruned


def _spirals_training(callbacks, average=0.0, epochs=4):
    """The training core on two spirals: 8 steps an epoch, evaluated after each; -> (loop, best weights)."""
    from minidl.train import train

    X, y = two_spirals(64, noise=0.1, seed=0)
    X, y = md.tensor(X.astype(np.float32)), md.tensor(y)
    model = _mlp(sizes=(2, 32, 32, 2))
    batches = lambda epoch: [(X[i::8], y[i::8]) for i in range(8)]
    return train(model, batches, lambda m, b: md.cross_entropy(m(b[0]), b[1]), Adam(model.parameters(), lr=0.05,
                 average=average), epochs=epochs, evaluate=lambda m: {"loss": md.cross_entropy(m(X), y).item()},
                 every=8, callbacks=callbacks)


def test_the_weight_average_is_masked_too():
    """With a running average of the weights, the best model (the average) came back unpruned: the
    average was updated before the masks zeroed the weights, and never masked itself."""
    model_sparsity = lambda state: np.mean([(w == 0).mean() for n, w in state.items() if n.endswith("weight")])
    schedule = GradualPruning(final=0.7, start=0, end=16, every=8, threshold="layer")
    loop, best = _spirals_training([schedule], average=0.9)
    assert model_sparsity(best) == pytest.approx(0.7, abs=0.01)


def test_no_model_from_the_middle_of_a_pruning_schedule_is_kept_as_best():
    """An evaluation before the schedule's end (here at steps 8 and 16 of end 24) could be the best,
    and a model less sparse than `final` came back (0.48 of 0.5 in a distillation)."""
    schedule = GradualPruning(final=0.9, start=0, end=24, every=8, threshold="layer")
    loop, best = _spirals_training([schedule])
    assert [h.get("unsettled", False) for h in loop["history"]] == [True, True, False, False]
    assert loop["best"]["step"] >= 24
    assert np.mean([(w == 0).mean() for n, w in best.items() if n.endswith("weight")]) == pytest.approx(0.9, abs=0.01)


def test_loading_a_pruned_file_into_a_fresh_model_points_to_load_pruned(tmp_path):
    """Model.load said "Build the model with the same sizes as the one that was saved" (the sizes were)."""
    from minidl.nn.module import StateDictError

    model = _mlp()
    prune_global_magnitude(model, 0.6)
    model.save(tmp_path / "pruned.npz")
    with pytest.raises(StateDictError, match=r"unexpected keys .*0.weight_mask(.|\n)*These are pruning masks: "
                                             r"minidl.compress.load_pruned\(model, path\)"):
        _mlp().load(tmp_path / "pruned.npz")
    load_pruned(_mlp(), tmp_path / "pruned.npz")

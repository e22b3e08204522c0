"""Which weights pruning considers (scope "linear" / "all" / parameters=[...]), recorded in the
report; and masks stored as bits by every save (model.save), old float-mask files still loading."""
import os

import numpy as np
import pytest

import minidl as md
from minidl.compress.prune import (GradualPruning, apply_masks, format_report, get_mask, load_pruned,
                                   prune_global_magnitude, prune_l1_per_layer, weight_matrices)
from minidl.io import read_npz, write_npz
from minidl.models import build_model
from minidl.nn import Embedding, Linear, ReLU, Sequential
from minidl.optim import Adam

# a vocabulary large enough that the N(0, 1) embedding table is most of the weights, as in a real
# text model: one global threshold over table and Linears (±1/√fan_in) then lies above every
# entry of the FFN output matrices (fan_in = d_ff, the smallest scale)
V, D, F = 5000, 32, 128


def _transformer(device="cpu"):
    md.manual_seed(0)
    return build_model("transformer", V, hidden=D, num_heads=4, num_layers=2, d_ff=F, max_len=16, dropout=0.0,
                       device=device)


def _linear_names(model):
    return [name for name in weight_matrices(model) if name != "embedding.weight"]


def _abs(model):
    return {name: np.abs(p.numpy()).copy() for name, p in model.named_parameters()}


def test_scope_all_collapses_ffn_outputs_scope_linear_does_not():
    """Global magnitude pruning at 20 %: over table + Linears ("all") the table loses a few
    per cent and the FFN output matrices almost everything; over the Linears alone ("linear",
    the default) the table is untouched, the Linears together lose exactly 20 % by one
    threshold, and each matrix ends near it (the FFN outputs, at half the others' scale, lose
    about twice as much)."""
    model = _transformer()
    assert float(np.std(model.embedding.weight.numpy())) == pytest.approx(1.0, abs=0.02)  # N(0, 1)
    report = prune_global_magnitude(model, 0.2, scope="all")
    assert report.scope == "all" and "embedding.weight" in [r.name for r in report.rows]
    assert report.sparsity == pytest.approx(0.2, abs=1e-6)
    assert report["embedding.weight"].sparsity < 0.15
    ffn_out = [r for r in report.rows if r.name.endswith("feed_forward.3.weight")]
    assert len(ffn_out) == 2 and all(r.sparsity > 0.9 for r in ffn_out), ffn_out
    assert "scope: all" in format_report(report)

    model = _transformer()
    before = _abs(model)
    report = prune_global_magnitude(model, 0.2)  # scope="linear"
    linears = _linear_names(model)
    assert report.scope == "linear" and [r.name for r in report.rows] == linears
    assert get_mask(model.embedding) is None
    np.testing.assert_array_equal(np.abs(model.embedding.weight.numpy()), before["embedding.weight"])
    total = sum(before[n].size for n in linears)
    assert report.parameters == total and report.parameters - report.nonzeros == round(0.2 * total)
    after = _abs(model)
    pruned = np.concatenate([before[n][after[n] == 0] for n in linears])
    kept = np.concatenate([before[n][after[n] != 0] for n in linears])
    assert pruned.max() <= kept.min()  # one threshold over all the Linears
    for row in report.rows:
        assert 0.1 < row.sparsity < 0.4, row  # nothing collapses


def test_scope_per_layer_and_explicit_parameters_are_recorded():
    model = _transformer()
    report = prune_l1_per_layer(model, 0.3, scope="all")
    assert report.scope == "all" and len(report.rows) == len(weight_matrices(model))
    for row in report.rows:
        assert row.parameters - row.nonzeros == round(0.3 * row.parameters), row
    assert prune_global_magnitude(_transformer(), 0.2, weight_matrices(model)).scope == "all"
    assert prune_global_magnitude(_transformer(), 0.2, _linear_names(model)).scope == "linear"
    assert prune_global_magnitude(_transformer(), 0.2, ["out.weight"], scope="linear").scope == "custom"
    mlp = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    assert prune_global_magnitude(mlp, 0.5, scope="all").scope == "all"  # no table: the Linears


def test_bad_scope_and_scope_with_parameters_are_refused():
    model = _transformer()
    for prune in (prune_global_magnitude, prune_l1_per_layer):
        with pytest.raises(ValueError, match=r'scope must be "linear" .* or "all"'):
            prune(model, 0.2, scope="embeddings")
        with pytest.raises(ValueError, match="not both"):
            prune(model, 0.2, parameters=["out.weight"], scope="all")
    with pytest.raises(ValueError, match="not both"):
        GradualPruning(model, parameters=["out.weight"], scope="all")
    with pytest.raises(ValueError, match="scope must be"):
        GradualPruning(model, scope="everything")
    assert not [name for name, _ in model.named_buffers()]  # nothing was pruned on the way
    with pytest.raises(ValueError, match='scope="all"'):
        prune_global_magnitude(Sequential(Embedding(10, 4)), 0.5)  # no Linear: the message says how
    assert prune_global_magnitude(Sequential(Embedding(10, 4)), 0.5, scope="all").sparsity == pytest.approx(0.5)


def test_gradual_pruning_scope_and_threshold():
    model = _transformer()
    schedule = GradualPruning(model, 0.0, 0.5, start=0, end=2, every=1, scope="all", threshold="layer")
    for step in range(3):
        schedule.on_step(step)
    assert schedule.report.scope == "all"
    for row in schedule.report.rows:
        assert row.parameters - row.nonzeros == round(0.5 * row.parameters), row
    other = _transformer()
    explicit = GradualPruning(other, 0.0, 0.5, start=0, end=0, parameters=weight_matrices(other), threshold="layer")
    explicit.on_step(0)
    assert (explicit.threshold, explicit.report.scope) == ("layer", "all")
    assert explicit.report["embedding.weight"].sparsity == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="scope"):
        GradualPruning(other, 0.0, 0.5, scope="layer")
    default = GradualPruning(_transformer(), 0.0, 0.2, start=0, end=0)
    default.on_step(0)
    assert default.report.scope == "linear" and "embedding.weight" not in [r.name for r in default.report.rows]


# --- masks on disk ------------------------------------------------------------------------------
def _mlp(device="cpu"):
    md.manual_seed(0)
    return Sequential(Linear(64, 256, device=device), ReLU(), Linear(256, 256, device=device), ReLU(),
                      Linear(256, 10, device=device))


def _assert_same(a, b):
    for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and ta.dtype == tb.dtype, (na, nb, ta.dtype, tb.dtype)
        np.testing.assert_array_equal(ta, tb)


def test_model_save_stores_masks_as_bits(tmp_path, device):
    """A 90 %-pruned model.save costs dense + 1 bit per weight (was float32 masks, 2× dense)."""
    model = _mlp(device)
    dense = os.path.getsize(model.save(str(tmp_path / "dense.npz")))
    prune_global_magnitude(model, 0.9)
    assert all(get_mask(m).dtype == "bool" for m in model.modules() if isinstance(m, Linear))
    path = model.save(str(tmp_path / "pruned.npz"))
    assert os.path.getsize(path) < 1.1 * dense, (os.path.getsize(path), dense)
    stored = read_npz(path)
    assert not [k for k in stored if k.endswith("_mask")]
    bits = {k: v for k, v in stored.items() if k.endswith("_mask.__bits__")}
    assert len(bits) == 3 and all(v.dtype == np.uint8 for v in bits.values())
    assert bits["2.weight_mask.__bits__"].size == 256 * 256 // 8

    x = md.randn(5, 64, device=device)
    fresh = _mlp(device)
    load_pruned(fresh, path)
    _assert_same(fresh, model)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    other = _mlp(device)  # masks registered by pruning at 0, then a plain load_state_dict of the file
    prune_global_magnitude(other, 0.0)
    other.load_state_dict(read_npz(path))
    _assert_same(other, model)
    again = _mlp(device)
    prune_global_magnitude(again, 0.0)
    again.load(path)
    _assert_same(again, model)


def test_boolean_masks_lock_on_both_backends_and_leave_gradients_alone(device):
    model = _mlp(device)
    prune_global_magnitude(model, 0.5)
    zero = {n: p.numpy() == 0 for n, p in model.named_parameters() if n.endswith("weight")}
    twin = _mlp(device)  # the same zeroed weights, no masks
    twin.load_state_dict({k: v for k, v in model.state_dict().items() if not k.endswith("_mask")}, strict=False)
    x = md.randn(8, 64, device=device)
    y = md.tensor(np.arange(8) % 10, device=device)
    for m in (model, twin):
        md.cross_entropy(m(x), y).backward()
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        np.testing.assert_array_equal(md.Tensor(p.grad).numpy(), md.Tensor(q.grad).numpy(), err_msg=name)
    optimizer = Adam(model.parameters(), lr=1e-2)
    optimizer.step()
    assert apply_masks(model) == 3
    assert all(np.all(p.numpy()[zero[n]] == 0) for n, p in model.named_parameters() if n in zero)
    model.to(dtype="float64")  # masks stay boolean, still apply
    assert get_mask(model[0]).dtype == "bool" and model[0].weight.dtype == "float64"
    apply_masks(model)
    assert all(np.all(p.numpy()[zero[n]] == 0) for n, p in model.named_parameters() if n in zero)


def test_old_files_with_float_masks_still_load(tmp_path, device):
    model = _mlp(device)
    prune_global_magnitude(model, 0.7)
    old = {k: (v.astype(np.float32) if v.dtype == np.bool_ else v) for k, v in model.state_dict().items()}
    path = str(tmp_path / "old.npz")
    write_npz(path, old)  # what model.save wrote before masks were packed
    fresh = _mlp(device)
    load_pruned(fresh, path)
    _assert_same(fresh, model)
    other = _mlp(device)
    prune_global_magnitude(other, 0.0)
    other.load(path)
    _assert_same(other, model)

"""Structured pruning: a pruned model computes exactly what the dense one computes with the
removed heads / neurons / units silenced, the lowest-scoring ones go, the parameter count
drops by what the shapes say, it still trains and passes gradcheck, and a fresh build plus
``load_structured`` gives it back from a smaller file."""
import json
import os

import numpy as np
import pytest

import minidl as md
from minidl.compress import (apply_masks, factorize, get_mask, load_structured, prune_ffn_neurons, prune_heads,
                             prune_l1_per_layer, prune_rnn_units, restructure, save_structured, structure_of)
from minidl.gradcheck import gradcheck
from minidl.io import CheckpointError
from minidl.models import build_model
from minidl.nn import GRU, StateDictError
from minidl.optim import Adam

V, D, HEADS, D_HEAD, F, E, H, C = 10, 16, 4, 4, 32, 6, 8, 2
IDS = np.array([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9], [9, 1, 3, 3, 0]])
TRANSFORMER = dict(hidden=D, num_heads=HEADS, num_layers=2, d_ff=F, max_len=5, dropout=0.0)
RECURRENT = {"rnn": ("rnn", {}), "rnn-tanh": ("rnn", {"nonlinearity": "tanh"}), "gru": ("gru", {})}


def build(name, device="cpu", seed=0, **config):
    md.manual_seed(seed)
    if name == "transformer":
        return build_model("transformer", V, **{**TRANSFORMER, **config}, device=device, dtype="float64")
    kind, options = RECURRENT[name]
    return build_model(kind, V, hidden=H, embed_dim=E, **{**options, **config}, device=device, dtype="float64")


def batch(device="cpu", ids=IDS):
    mask = (ids > 0).astype(np.float64)
    return (md.tensor(ids, device=device), md.tensor(mask, device=device, dtype="float64"),
            md.tensor(mask.sum(axis=1).astype(np.int64), device=device))


def logits(model, device="cpu"):
    return model(*batch(device)).logits.numpy()


def zero(param, index, axis):
    """param[..., index] = 0 along ``axis``, in place (through NumPy: works on every device)."""
    values = param.numpy().copy()
    np.moveaxis(values, axis, 0)[index] = 0.0
    param.data = param.xp.asarray(values, param.dtype)


def lowest(scores, k):
    return sorted(np.argsort(scores, kind="stable")[:k].tolist())


def norms(a, axis):
    return np.sqrt((a ** 2).sum(axis=axis))


# --- exact equivalence with the silenced dense model -------------------------------------------------
def test_heads_equal_the_dense_model_with_their_values_zeroed(device):
    dense, model = build("transformer", device), build("transformer", device)
    attentions = {name: m for name, m in dense.named_modules() if name.endswith("attention")}
    expected = {}
    for name, a in attentions.items():
        w_v, w_o = a.value.weight.numpy().reshape(D, HEADS, D_HEAD), a.out.weight.numpy().reshape(HEADS, D_HEAD, D)
        expected[name] = lowest(norms(w_v, (0, 2)) * norms(w_o, (1, 2)), 2)
    report = prune_heads(model, 0.5)
    assert {row.name: row.removed for row in report.layers} == expected
    for name, a in attentions.items():
        features = [i * D_HEAD + k for i in expected[name] for k in range(D_HEAD)]
        zero(a.value.weight, features, 1)
        zero(a.value.bias, features, 0)
    np.testing.assert_allclose(logits(model, device), logits(dense, device), rtol=0, atol=1e-10)
    assert all(m.num_heads == 2 for name, m in model.named_modules() if name.endswith("attention"))


def test_named_heads_are_the_ones_removed(device):
    dense, model = build("transformer", device), build("transformer", device)
    heads = {"encoder.layers.0.attention": [3, 0, 3], "encoder.layers.1.attention": [2]}
    report = prune_heads(model, heads=heads)
    assert report["encoder.layers.0.attention"].removed == [0, 3]
    assert (report["encoder.layers.1.attention"].before, report["encoder.layers.1.attention"].after) == (4, 3)
    modules = dict(dense.named_modules())
    for name, removed in heads.items():
        features = [i * D_HEAD + k for i in set(removed) for k in range(D_HEAD)]
        zero(modules[name].value.weight, features, 1)
        zero(modules[name].value.bias, features, 0)
    np.testing.assert_allclose(logits(model, device), logits(dense, device), rtol=0, atol=1e-10)


def test_neurons_equal_the_dense_model_with_them_zeroed(device):
    dense, model = build("transformer", device), build("transformer", device)
    report = prune_ffn_neurons(model, 0.25)
    for layer in dense.encoder.layers:
        w1, w2 = layer.feed_forward[0].weight.numpy(), layer.feed_forward[3].weight.numpy()
        removed = lowest(norms(w1, 0) * norms(w2, 1), F // 4)
        name = [n for n, m in dense.named_modules() if m is layer.feed_forward][0]
        assert report[name].removed == removed and report[name].after == F - F // 4
        zero(layer.feed_forward[0].weight, removed, 1)
        zero(layer.feed_forward[0].bias, removed, 0)
    np.testing.assert_allclose(logits(model, device), logits(dense, device), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", list(RECURRENT))
def test_units_equal_the_dense_model_with_them_silenced(device, name):
    dense, model = build(name, device), build(name, device)
    rnn, gates = dense.rnn, dense.rnn.gates
    hidden = [rnn.U] if gates == 1 else [rnn.U_zr, rnn.U_h]   # (H, k·H) each
    incoming = (rnn.W_x.numpy().reshape(E, gates, H) ** 2).sum(axis=(0, 1))
    outgoing = (dense.out.weight.numpy() ** 2).sum(axis=1)
    for U in hidden:
        incoming += (U.numpy().reshape(H, -1, H) ** 2).sum(axis=(0, 1))
        outgoing += (U.numpy() ** 2).sum(axis=1)
    removed = lowest(np.sqrt(incoming * outgoing), 3)
    report = prune_rnn_units(model, 3 / H)
    assert report["rnn"].removed == removed and model.rnn.hidden_size == H - 3
    # from h0 = 0 a unit with no input, no bias and no recurrent input stays 0 for ever
    columns = [g * H + j for g in range(gates) for j in removed]
    zero(rnn.W_x, columns, 1)
    zero(rnn.b, columns, 0)
    for U in hidden:
        zero(U, [g * H + j for g in range(U.shape[1] // H) for j in removed], 1)
    np.testing.assert_allclose(logits(model, device), logits(dense, device), rtol=0, atol=1e-10)
    ids = md.tensor(IDS, device=device)
    np.testing.assert_allclose(model.prefix_logits(ids).numpy(), dense.prefix_logits(ids).numpy(), atol=1e-10)


# --- sizes ---------------------------------------------------------------------------------------------
def test_the_parameter_count_drops_by_what_the_shapes_say():
    model = build("transformer")
    before = model.num_parameters()
    heads = prune_heads(model, 0.5)            # 2 layers × 2 heads: W_q, W_k, W_v columns, b_q, b_v, W_o rows
    assert before - heads.params_after == 2 * 2 * (4 * D * D_HEAD + 2 * D_HEAD)
    neurons = prune_ffn_neurons(model, 0.5)    # 2 layers × 16 neurons: W₁ column, b₁, W₂ row
    assert heads.params_after - neurons.params_after == 2 * 16 * (2 * D + 1)
    assert model.num_parameters() == neurons.params_after

    def recurrent(gates, h):                   # W_x, b, the recurrent matrices, W_out
        return gates * (E * h + h + h * h) + h * C
    for name, gates in (("rnn", 1), ("gru", 3)):
        report = prune_rnn_units(build(name), 0.5)
        assert report.params_before - report.params_after == recurrent(gates, H) - recurrent(gates, H // 2)


def test_amount_zero_changes_nothing():
    for name, prune in (("transformer", prune_heads), ("transformer", prune_ffn_neurons), ("gru", prune_rnn_units)):
        model = build(name)
        state = model.state_dict()
        report = prune(model, 0.0)
        assert report.params_after == report.params_before
        assert all(row.before == row.after and not row.removed for row in report.layers)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value, state[key])


def test_at_least_one_of_everything_stays():
    model = build("transformer")
    prune_heads(model, 0.99)
    prune_ffn_neurons(model, 0.99)
    assert structure_of(model)["encoder.layers.1.attention"] == {"num_heads": 1}
    assert structure_of(model)["encoder.layers.1.feed_forward"] == {"d_ff": 1}
    assert logits(model).shape == (3, C)


def test_report_reads_well():
    text = str(prune_heads(build("transformer"), heads={"encoder.layers.0.attention": [1]}))
    assert text.splitlines()[0].startswith("prune_heads: parameters 4,722 -> 4,458 (94.4%)")
    assert "encoder.layers.0.attention  num_heads 4 -> 3 (removed 1)" in text
    assert "encoder.layers.1.attention  num_heads 4 -> 4" in text


# --- still a model -------------------------------------------------------------------------------------
def _pruned(name, device="cpu", **config):
    model = build(name, device, **config)
    if name == "transformer":
        prune_heads(model, 0.5)
        prune_ffn_neurons(model, 0.5)
    else:
        prune_rnn_units(model, 0.5)
    return model


@pytest.mark.parametrize("name", ["transformer", "rnn", "gru"])
def test_a_pruned_model_still_trains(name):
    model = _pruned(name)
    optimizer = Adam(model.parameters(), lr=0.01)
    targets = md.tensor(np.array([0, 1, 1]))
    losses = []
    for _ in range(5):
        loss = md.cross_entropy(model(*batch()).logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# the GRU's update gate starts near σ(−2) ≈ 0.12 and its states stay small, so some U_zr
# gradients are ~3e-8, where round-off alone leaves a relative error of a few 1e-6
GRADCHECK_TOL = {"transformer": 1e-7, "rnn-tanh": 1e-7, "gru": 1e-5}


@pytest.mark.parametrize("name", list(GRADCHECK_TOL))
def test_gradcheck(device, name):
    """Over every parameter of the pruned layers (and of what reads them), float64, eps = 1e-4."""
    small = dict(hidden=8, d_ff=8, num_layers=1, max_len=4) if name == "transformer" else {}
    model = _pruned(name, device, **small)
    ids, mask, lengths = batch(device, IDS[:2, :4])
    params = [p for n, p in model.named_parameters() if n.startswith(("encoder.layers", "rnn", "out"))]
    result = gradcheck(lambda *_: model(ids, mask, lengths).logits, params, eps=1e-4, tol=GRADCHECK_TOL[name],
                       seed=1)
    assert result.ok, result


# --- saving and loading --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["transformer", "gru"])
def test_save_then_load_into_a_fresh_build(tmp_path, name):
    model = _pruned(name)
    dense = str(tmp_path / "dense.npz")
    build(name).save(dense)
    path = save_structured(model, str(tmp_path / "pruned.npz"), meta={"model": name})
    assert os.path.getsize(path) < 0.8 * os.path.getsize(dense)
    fresh = build(name, seed=1)
    with pytest.raises(StateDictError, match="shape mismatch"):
        fresh.load_state_dict(model.state_dict())   # why the structure must be saved
    assert load_structured(fresh, path) == {"model": name}
    assert structure_of(fresh) == structure_of(model)
    np.testing.assert_array_equal(logits(fresh), logits(model))
    assert json.loads(json.dumps(structure_of(model))) == structure_of(model)


def test_pruning_masks_are_sliced_with_their_weights(tmp_path):
    model = build("transformer")
    prune_l1_per_layer(model, 0.5)
    prune_ffn_neurons(model, 0.5)
    first = model.encoder.layers[0].feed_forward[0]
    assert get_mask(first).shape == first.weight.shape == (D, F // 2)
    assert apply_masks(model) == 13  # 2 layers × (4 attention + 2 feed-forward) + out
    path = save_structured(model, str(tmp_path / "pruned.npz"))
    fresh = build("transformer")
    load_structured(fresh, path)
    np.testing.assert_array_equal(get_mask(fresh.encoder.layers[0].feed_forward[0]).numpy(), get_mask(first).numpy())
    np.testing.assert_array_equal(logits(fresh), logits(model))


def test_loading_refuses_what_does_not_fit(tmp_path):
    with pytest.raises(CheckpointError, match="not a structured checkpoint.*model.load"):
        load_structured(build("gru"), build("gru").save(str(tmp_path / "dense.npz")))
    with pytest.raises(ValueError, match=r"has num_heads=4 and can only shrink to a size in 1\.\.4"):
        restructure(build("transformer"), {"encoder.layers.0.attention": {"num_heads": 6}})
    with pytest.raises(ValueError, match="no prunable module 'rnn'"):
        restructure(build("transformer"), {"rnn": {"hidden": 4}})


# --- refusals ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, "half"])
def test_amount_outside_zero_one_is_refused(amount):
    for name, prune in (("transformer", prune_heads), ("transformer", prune_ffn_neurons), ("gru", prune_rnn_units)):
        with pytest.raises(ValueError, match=rf"{prune.__name__}: amount .* must lie in \[0, 1\)"):
            prune(build(name), amount)


def test_a_model_without_such_layers_is_refused():
    with pytest.raises(ValueError, match="the model has no MultiHeadSelfAttention layers; prune_heads needs a"):
        prune_heads(build("gru"), 0.5)
    with pytest.raises(ValueError, match="no transformer feed-forward layers"):
        prune_ffn_neurons(build("rnn"), 0.5)
    with pytest.raises(ValueError, match="no ElmanRNN or GRU layer"):
        prune_rnn_units(build("transformer"), 0.5)
    with pytest.raises(ValueError, match="cannot tell what reads the hidden state of GRU"):
        prune_rnn_units(GRU(3, 4), 0.5)
    factorised = build("transformer")
    factorize(factorised, rank=2, min_size=D * D)
    with pytest.raises(ValueError, match="holds factorised or quantised layers.*prune first"):
        prune_heads(factorised, 0.5)


def test_bad_head_lists_are_refused():
    model = build("transformer")
    with pytest.raises(ValueError, match="exactly one of amount= .* or heads="):
        prune_heads(model)
    with pytest.raises(ValueError, match="exactly one"):
        prune_heads(model, 0.5, heads={})
    with pytest.raises(ValueError, match=r"names heads that do not exist: \[4\]; the layer has 4 heads, "
                                         r"numbered 0\.\.3"):
        prune_heads(model, heads={"encoder.layers.0.attention": [1, 4]})
    with pytest.raises(ValueError, match="removes all 4 heads of the layer; keep at least one"):
        prune_heads(model, heads={"encoder.layers.1.attention": [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="no MultiHeadSelfAttention named 'encoder.layers.2.attention'"):
        prune_heads(model, heads={"encoder.layers.2.attention": [0]})
    assert structure_of(model)["encoder.layers.0.attention"] == {"num_heads": 4}  # nothing was touched

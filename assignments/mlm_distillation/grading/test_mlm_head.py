"""Task 2: the masked-LM logits, at every position or at the masked positions only
(minidl/models/transformer.py: TransformerClassifier.masked_lm_logits)."""
import contextlib

import numpy as np
import pytest

import minidl as md
from minidl.assignment.checks import (NumpyOnTorch, check_close, check_gradients, check_outputs, expected, fixed,
                                      torch_refuses_numpy)
from minidl.models.transformer import TransformerClassifier

V = 12
SETTINGS = dict(d_model=8, num_heads=2, num_layers=1, d_ff=16, max_len=6, dropout=0.0, pooling="cls")
IDS = np.array([[2, 5, 4, 7, 9], [2, 4, 11, 6, 0]])                      # [CLS] ..., the second row padded
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], dtype=np.float64)
POSITIONS = np.array([7, 2, 6, 3])                                          # flat b·T + t, in no particular order
CONTEXT = "a 1-layer transformer (d_model 8, V 12) with fixed float64 weights, ids (2, 5), positions [7, 2, 6, 3]"


def _state():
    """Fixed weights (the same on every machine): layer-norm gains near 1, everything else of order 1."""
    model = TransformerClassifier(V, mlm_head=True, dtype="float64", **SETTINGS)
    state = {}
    for seed, (name, p) in enumerate(sorted(model.named_parameters())):
        gain = "norm" in name or name.startswith("mlm_head.transform.2")
        state[name] = (1.0 + fixed(p.shape, seed=seed, scale=0.3) if gain and name.endswith("weight")
                       else fixed(p.shape, seed=seed, scale=0.7))
    return state


STATE = _state()


def model(device="cpu"):
    net = TransformerClassifier(V, mlm_head=True, dtype="float64", device=device, **SETTINGS)
    net.load_state_dict(STATE)
    return net.eval()


def inputs(device="cpu"):
    return (md.tensor(IDS, device=device), md.tensor(MASK, dtype="float64", device=device),
            md.tensor(POSITIONS, device=device))


def case_mlm_logits():
    net = model()
    ids, mask, positions = inputs()
    with md.no_grad():
        return {"all": net.masked_lm_logits(ids, mask), "at_positions": net.masked_lm_logits(ids, mask, positions)}


def test_logits_at_every_position():
    net = model()
    ids, mask, _ = inputs()
    with md.no_grad():
        out = net.masked_lm_logits(ids, mask)
    assert tuple(out.shape) == (2, 5, V), (
        f"masked_lm_logits(ids (2, 5), mask) without positions gave shape {tuple(out.shape)}, expected (B, T, V) = "
        f"(2, 5, {V})")
    check_close("masked_lm_logits(ids, mask)", out, expected(__file__, "mlm_logits")["all"],
                CONTEXT + "; expected: the head on the encoder's states, its output product with the embedding table")


def test_logits_at_the_positions_are_the_full_logits_gathered():
    net = model()
    ids, mask, positions = inputs()
    with md.no_grad():
        full = net.masked_lm_logits(ids, mask).numpy().reshape(-1, V)
        picked = net.masked_lm_logits(ids, mask, positions)
    assert tuple(picked.shape) == (len(POSITIONS), V), (
        f"masked_lm_logits(ids, mask, positions (4,)) gave shape {tuple(picked.shape)}, expected (N, V) = (4, {V})")
    check_close("masked_lm_logits(ids, mask, positions)", picked, full[POSITIONS],
                CONTEXT + "; expected: row n = the full (B, T, V) logits at flat position positions[n] = b·T + t")
    check_outputs("masked_lm_logits", case_mlm_logits(), expected(__file__, "mlm_logits"), CONTEXT)


def _checked(net):
    return {"embedding.weight": net.embedding.weight, "mlm_head.bias": net.mlm_head.bias,
            "attention.query.weight": net.encoder.layers[0].attention.query.weight,
            "mlm_head.transform.0.weight": net.mlm_head.transform[0].weight}


def test_gradients_flow_through_the_gather_and_the_tied_head():
    # The embedding table gets its gradient through both the lookup and the output product (weight tying);
    # the encoder's weights only through the gathered states.
    net = model()
    ids, mask, positions = inputs()
    check_gradients("masked_lm_logits(ids, mask, positions)", lambda *params: net.masked_lm_logits(ids, mask, positions),
                    _checked(net))


def test_the_same_on_the_torch_backend():
    runs = {}
    g = np.cos(np.arange(len(POSITIONS) * V) * 0.9).reshape(len(POSITIONS), V)
    for device in ("cpu", "torch"):
        net = model(device)
        try:
            with torch_refuses_numpy() if device == "torch" else contextlib.nullcontext():  # as on a GPU
                out = net.masked_lm_logits(*inputs(device))
                out.backward(out.xp.asarray(g, "float64"))
        except NumpyOnTorch as e:
            raise AssertionError(f"masked_lm_logits(ids, mask, positions): {e}") from None
        runs[device] = (out, {name: p.grad for name, p in _checked(net).items()})
    context = "on the torch backend; expected: the NumPy backend's value. Use the backend namespace xp, not np."
    check_close("masked_lm_logits(ids, mask, positions)", runs["torch"][0], runs["cpu"][0], context,
                rtol=1e-9, atol=1e-12)
    for name, want in runs["cpu"][1].items():
        got = runs["torch"][1][name]
        assert want is not None and got is not None, f"masked_lm_logits: {name} got no gradient on one backend"
        check_close(f"masked_lm_logits: dL/d{name}", got, want, context, rtol=1e-9, atol=1e-12)


def test_a_model_without_the_mlm_head_is_refused():
    net = TransformerClassifier(V, dtype="float64", **SETTINGS)
    ids, mask, positions = inputs()
    with pytest.raises(ValueError):
        net.masked_lm_logits(ids, mask, positions)

"""minidl.viz.gradient_flow: the norm of every parameter's gradient, and dL/dh_t of the recurrent
models against t, checked against .grad and against centred differences."""
import numpy as np
import pytest

import minidl as md
from minidl.autograd import ops
from minidl.models import build_model
from minidl.viz import gradient_flow, recurrent_gradient_flow

IDS = np.array([[2, 3, 4, 5, 0, 0], [6, 2, 7, 8, 9, 3], [4, 0, 0, 0, 0, 0]])
LABELS = [0, 1, 1]


def batch():
    mask = (IDS > 0).astype(np.float64)
    return (md.tensor(IDS), md.tensor(mask, dtype="float64"), md.tensor(mask.sum(axis=1).astype(np.int64)),
            md.tensor(LABELS))


def small(name, **config):
    md.manual_seed(0)
    return build_model(name, 10, embed_dim=4, dtype="float64", **config)


def test_gradient_flow_is_the_norm_of_each_grad(tmp_path):
    model = small("mlp", hidden=(4, 3))
    ids, mask, lengths, labels = batch()
    md.cross_entropy(model(ids, mask, lengths).logits, labels).backward()
    flow = gradient_flow(model, tmp_path / "flow.png")
    names = [name for name, _ in model.named_parameters()]
    assert flow["names"] == names and list(flow["norms"]) == names
    for name, p in model.named_parameters():
        assert flow["norms"][name] == pytest.approx(np.linalg.norm(p.grad), rel=1e-12)
    assert flow["layers"][0] == "embedding" and flow["layers"][-1] == "score"
    assert flow["shapes"] == [tuple(p.shape) for p in model.parameters()]
    assert (tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG" and flow["figure"] is not None


def test_gradient_flow_without_grads_and_without_drawing(tmp_path):
    model = small("gru", hidden=3)
    flow = gradient_flow(model, draw=False)
    assert "figure" not in flow and set(flow["norms"].values()) == {None}
    gradient_flow(model, tmp_path / "none.svg")          # bars of "no grad" still draw
    assert (tmp_path / "none.svg").read_text().lstrip().startswith("<?xml")


def loss_from_state(model, ids, lengths, labels, t, h_t):
    """The mean cross-entropy when the hidden state after word t is replaced by ``h_t``: the
    states before t as the model computes them, the rest run on from h_t."""
    rnn = model.rnn
    x_proj = rnn._project(model.embed(ids))
    hs = model.rnn(model.embed(ids))
    rest = ops.gru(x_proj[:, t + 1:], h_t, rnn.U_zr, rnn.U_h) if t + 1 < IDS.shape[1] else None
    pieces = [hs[:, :t], h_t.unsqueeze(1)] + ([rest] if rest is not None else [])
    states = ops.concat(pieces, axis=1)
    last = states[md.arange(IDS.shape[0]), lengths - 1]
    return md.cross_entropy(model.out(last), labels).item()


def test_recurrent_gradient_flow_matches_centred_differences(tmp_path):
    model = small("gru", hidden=3)
    ids, mask, lengths, labels = batch()
    result = recurrent_gradient_flow(model, ids, mask, lengths, labels, out_path=tmp_path / "bptt.png")
    T = IDS.shape[1]
    assert result["norms"].shape == (T,) and list(result["t"]) == list(range(T))
    assert result["per_review"].shape == (3, T) and result["grads"].shape == (3, T, 3)
    np.testing.assert_allclose(result["logits"], model(ids, mask, lengths).logits.numpy(), rtol=1e-12)
    np.testing.assert_allclose(result["norms"], np.sqrt((result["per_review"] ** 2).sum(axis=0)), rtol=1e-12)
    # a step after a review's last word never reaches the loss; every step before it does,
    # through the recurrence, although the loss reads only the last state
    for b, length in enumerate(result["lengths"]):
        assert np.all(result["per_review"][b, length:] == 0) and np.all(result["per_review"][b, :length] > 0)
    assert all(p.grad is None for p in model.parameters())   # the model's .grad are left alone
    assert (tmp_path / "bptt.png").read_bytes()[:4] == b"\x89PNG"

    t, eps = 2, 1e-6
    with md.no_grad():
        hs = model.rnn(model.embed(ids))
        h_t = hs[:, t].numpy()
        numeric = np.zeros_like(h_t)
        for index in np.ndindex(*h_t.shape):
            step = np.zeros_like(h_t)
            step[index] = eps
            up = loss_from_state(model, ids, lengths, labels, t, md.tensor(h_t + step, dtype="float64"))
            down = loss_from_state(model, ids, lengths, labels, t, md.tensor(h_t - step, dtype="float64"))
            numeric[index] = (up - down) / (2 * eps)
    np.testing.assert_allclose(result["grads"][:, t], numeric, rtol=1e-6, atol=1e-10)


def test_recurrent_gradient_flow_of_an_elman_rnn_and_of_a_wrong_model():
    model = small("rnn", hidden=3)
    ids, mask, lengths, labels = batch()
    result = recurrent_gradient_flow(model, ids, mask, lengths, labels, draw=False)
    assert result["norms"].shape == (IDS.shape[1],) and "figure" not in result
    np.testing.assert_allclose(result["logits"], model(ids, mask, lengths).logits.numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="recurrent classifier"):
        recurrent_gradient_flow(small("mlp", hidden=(4, 3)), ids, mask, lengths, labels)

"""The five sentiment models: gradient checks, backend agreement, and what each must respect.

Gradient checks run in float64 over EVERY parameter (embeddings included) with the
five-point stencil at eps = 1e-4. Tolerances: 1e-7 for the GRU (smooth); 1e-6 for the
models with ReLU (the Elman RNN, TokenMLP, SoftmaxWeighted, WindowAttention), because a
ReLU pre-activation that falls within 2·eps of its kink at 0 bends the difference quotient.
"""
import numpy as np
import pytest

import minidl as md
from minidl.gradcheck import gradcheck
from minidl.models import MODELS, build_model

IDS = np.array([[2, 3, 4, 5, 0, 0], [6, 2, 7, 8, 9, 3], [4, 0, 0, 0, 0, 0]])
SMALL = {"rnn": dict(hidden=3), "gru": dict(hidden=3), "mlp": dict(hidden=(4, 3)),
         "softmax": dict(hidden=(4, 3)), "attention": dict(hidden=4, radius=2, scorer_hidden=(3,)),
         "transformer": dict(d_model=4, num_heads=2, num_layers=1, d_ff=8, max_len=16, dropout=0.0)}
TOLERANCE = {"gru": 1e-7, "rnn": 1e-6, "mlp": 1e-6, "softmax": 1e-6, "attention": 1e-6, "transformer": 1e-7}


def batch(ids, device, dtype="float64"):
    mask = (ids > 0).astype(np.float64)
    return (md.tensor(ids, device=device), md.tensor(mask, device=device, dtype=dtype),
            md.tensor(mask.sum(axis=1).astype(np.int64), device=device))


def small_model(name, device, seed=0, **overrides):
    md.manual_seed(seed)
    return build_model(name, 10, embed_dim=4, device=device, dtype="float64", **{**SMALL[name], **overrides})


@pytest.mark.parametrize("name", list(MODELS))
def test_model_gradcheck(name, device):
    model = small_model(name, device)
    ids, mask, lengths = batch(IDS, device)
    result = gradcheck(lambda *params: model(ids, mask, lengths).logits, list(model.parameters()), eps=1e-4,
                       tol=TOLERANCE[name])
    assert result.ok, result


@pytest.mark.parametrize("name", list(MODELS))
def test_backends_agree(name):
    """The same weights on NumPy and on PyTorch give the same logits and gradients (float64)."""
    cpu = small_model(name, "cpu")
    gpu_like = small_model(name, "torch")
    gpu_like.load_state_dict(cpu.state_dict())
    outs = []
    for model, device in ((cpu, "cpu"), (gpu_like, "torch")):
        ids, mask, lengths = batch(IDS, device)
        logits = model(ids, mask, lengths).logits
        (logits * logits).sum().backward()
        outs.append((logits.numpy(), [md.tensor(p.grad, dtype="float64").numpy() for p in model.parameters()]))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(outs[0][1], outs[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_padding_changes_nothing(name, device):
    """Extra padding at the end of a review leaves its logits unchanged (the recurrent models
    read the state at the last REAL word; the scorers ignore padded words)."""
    model = small_model(name, device)
    model.eval()
    short = model(*batch(IDS[:, :6], device)).logits.numpy()
    padded = model(*batch(np.pad(IDS, ((0, 0), (0, 5))), device)).logits.numpy()
    np.testing.assert_allclose(short, padded, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_recurrent_models_refuse_lengths_that_read_padding_or_another_batch(name, device):
    """A length of 0 read position −1 (padding), one past T raised deep in indexing, a batch's worth too many
    went unnoticed."""
    model, (ids, mask, _) = small_model(name, device), batch(IDS, device)
    for lengths in ([4, 6, 0], [4, 7, 1], [4, 6, 1, 2], [4.0, 6.0, 1.5]):
        with pytest.raises(ValueError, match=rf"{name}: lengths must be \(B,\) = \(3,\) whole numbers in 1..T = 1..6"):
            model(ids, mask, md.tensor(lengths, device=device))


def test_token_scores_sum_to_the_logits(device):
    model = small_model("mlp", device)
    out = model(*batch(IDS, device))
    np.testing.assert_allclose(out.token_scores.numpy().sum(axis=1), out.logits.numpy(), rtol=1e-12)
    assert np.all(out.token_scores.numpy()[IDS == 0] == 0)


def test_softmax_weights_cover_real_words_only(device):
    out = small_model("softmax", device)(*batch(IDS, device))
    weights = out.token_weights.numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(weights[IDS == 0] < 1e-300)
    expected = (weights[..., None] * out.token_scores.numpy()).sum(axis=1)
    np.testing.assert_allclose(out.logits.numpy(), expected, rtol=1e-12)


def test_attention_stays_inside_the_window_and_off_padding(device):
    model = small_model("attention", device, radius=2)
    weights = model(*batch(IDS, device)).attention.numpy()  # (B, T, 2r+1)
    B, T, w = weights.shape
    assert w == 5
    for b in range(B):
        for t in range(T):
            if IDS[b, t] == 0:
                assert np.all(weights[b, t] == 0)
                continue
            np.testing.assert_allclose(weights[b, t].sum(), 1.0, rtol=1e-12)
            for k in range(w):
                j = t + k - 2
                if not (0 <= j < T) or IDS[b, j] == 0:
                    assert weights[b, t, k] == 0


def test_fused_gru_equals_the_step_by_step_composition(device):
    """The fused GRU node against the course's equations written with minidl's primitive ops."""
    rng = np.random.default_rng(0)
    B, T, H = 3, 5, 4
    x_proj, h0, U_zr, U_h = (md.tensor(rng.standard_normal(s), requires_grad=True, device=device, dtype="float64")
                             for s in ((B, T, 3 * H), (B, H), (H, 2 * H), (H, H)))
    fused = md.gru(x_proj, h0, U_zr, U_h)
    (fused * fused).sum().backward()
    fused_grads = [md.tensor(t.grad, dtype="float64").numpy() for t in (x_proj, h0, U_zr, U_h)]
    for t in (x_proj, h0, U_zr, U_h):
        t.grad = None
    h, states = h0, []
    for t in range(T):
        z = (x_proj[:, t, :H] + h @ U_zr[:, :H]).sigmoid()
        r = (x_proj[:, t, H:2 * H] + h @ U_zr[:, H:]).sigmoid()
        h_tilde = (x_proj[:, t, 2 * H:] + (r * h) @ U_h).tanh()
        h = (1 - z) * h + z * h_tilde
        states.append(h)
    composed = md.stack(states, axis=1)
    (composed * composed).sum().backward()
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-12)
    for got, (name, t) in zip(fused_grads, zip(("x_proj", "h0", "U_zr", "U_h"), (x_proj, h0, U_zr, U_h))):
        np.testing.assert_allclose(got, md.tensor(t.grad, dtype="float64").numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_fused_gru_is_one_graph_node():
    model = small_model("gru", "cpu")
    hs = model.rnn(model.embed(md.tensor(IDS)))
    assert hs._ctx.fn.__name__ == "GRU"  # the whole sequence, not T·15 primitive nodes


def test_pretrained_embeddings_must_match_the_vocabulary():
    with pytest.raises(ValueError, match="rows but the vocabulary has 10"):
        build_model("mlp", 10, embeddings=np.zeros((7, 4)))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="choose one of rnn, gru, mlp, softmax, attention, transformer"):
        build_model("lstm", 10)


def test_the_registry_is_what_the_models_declare():
    """Each class declares its name, summary and abilities; the demo, sweeps, help texts and
    structured pruning read them from the registry, not from lists of names kept elsewhere."""
    from minidl.cli import build_parser
    from minidl.compress import prune_rnn_units
    from minidl.experiments.sweep import grid
    from minidl.models import COURSE_MODELS, GRUClassifier, describe

    assert all(cls.name == name and cls.summary for name, cls in MODELS.items())
    assert COURSE_MODELS == ("rnn", "gru", "mlp", "softmax", "attention")
    assert [n for n, cls in MODELS.items() if cls.hidden_list] == ["mlp", "softmax"]
    assert [n for n, cls in MODELS.items() if cls.prefix_states] == ["rnn", "gru"]
    assert grid(["mlp"], [[4, 3]], [0])[0]["hidden"] == [4, 3]
    with pytest.raises(ValueError, match=r"only the MLP scorers \(mlp, softmax\)"):
        grid(["gru"], [[4, 3]], [0])
    train_help = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert all(name in train_help for name in MODELS) and describe().startswith("rnn (")

    class Renamed(GRUClassifier):          # its recurrent layer under other names: pruning asks the model
        name = "renamed"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.encoder, self.head = self.rnn, self.out

        def prunable_units(self):
            return {"encoder": (self.encoder, self.head)}

    md.manual_seed(0)
    model = Renamed(10, hidden=4, embed_dim=3)
    assert list(prune_rnn_units(model, 0.5).layers[0].name.split(".")) == ["encoder"]
    assert model.encoder.hidden_size == 2 and model.head.weight.shape == (2, 2)

"""The transformer: multi-head self-attention, encoder layers (pre-LN and post-LN) and the
classifier (encoder "cls"/"mean", causal decoder "last", tied masked-LM head).

Gradient checks in float64 over the inputs and EVERY parameter, five-point stencil at
eps = 1e-4, tolerance 1e-7: softmax, LayerNorm and GELU are smooth, so the smooth-op bound
applies. Sizes are tiny (D = 8, 2 heads, T = 5, B = 2, dropout 0) to stay fast.
"""
import numpy as np
import pytest
import torch

import minidl as md
from minidl.gradcheck import gradcheck
from minidl.models.transformer import TransformerClassifier
from minidl.nn.transformer import (MultiHeadSelfAttention, PositionEmbedding, TransformerEncoder,
                                   TransformerEncoderLayer)

TOL = 1e-7
D, HEADS, B, T, V = 8, 2, 2, 5, 10
IDS = np.array([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9]])  # review 0 has 3 real words, review 1 has 5
MASK = (IDS > 0).astype(np.float64)


def tensor(a, device, **kwargs):
    return md.tensor(a, device=device, dtype="float64", **kwargs)


def batch(ids, device):
    mask = (ids > 0).astype(np.float64)
    return (md.tensor(ids, device=device), tensor(mask, device),
            md.tensor(mask.sum(axis=1).astype(np.int64), device=device))


def check(fn, inputs):
    result = gradcheck(fn, inputs, eps=1e-4, tol=TOL, seed=1)
    assert result.ok, result
    return result


def trainable(module):
    return [p for p in module.parameters() if p.requires_grad]


def classifier(device, seed=0, **overrides):
    md.manual_seed(seed)
    config = dict(d_model=D, num_heads=HEADS, num_layers=1, d_ff=16, max_len=8, dropout=0.0)
    return TransformerClassifier(V, device=device, dtype="float64", **{**config, **overrides})


# --- multi-head self-attention ------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_attention_gradcheck(device, rng, causal):
    md.manual_seed(0)
    attention = MultiHeadSelfAttention(D, HEADS, causal=causal, device=device, dtype="float64")
    x = tensor(rng.standard_normal((B, T, D)), device, requires_grad=True)
    mask = tensor(MASK, device)
    check(lambda x, *params: attention(x, mask), [x, *trainable(attention)])


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch_sdpa(rng, causal):
    """The same weights, in float64: minidl's composition against PyTorch's fused attention."""
    md.manual_seed(0)
    attention = MultiHeadSelfAttention(D, HEADS, causal=causal, dtype="float64")
    x = rng.standard_normal((B, T, D))
    ours = attention(tensor(x, "cpu"), tensor(MASK, "cpu")).numpy()

    w = {name: torch.from_numpy(p.numpy()) for name, p in attention.named_parameters()}
    xt = torch.from_numpy(x)

    def heads(name):  # minidl's Linear is x @ W + b, W stored (D_in, D_out); the key has no bias
        return (xt @ w[f"{name}.weight"] + w.get(f"{name}.bias", 0.0)).reshape(B, T, HEADS, D // HEADS).transpose(1, 2)

    allowed = torch.from_numpy(MASK > 0)[:, None, None, :].expand(B, 1, T, T)   # (B, 1, T_q, T_k)
    if causal:
        allowed = allowed & torch.tril(torch.ones(T, T, dtype=torch.bool))
    merged = torch.nn.functional.scaled_dot_product_attention(heads("query"), heads("key"), heads("value"),
                                                              attn_mask=allowed)
    theirs = merged.transpose(1, 2).reshape(B, T, D) @ w["out.weight"] + w["out.bias"]
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_the_fused_and_the_composed_path_agree(device, rng, causal):
    """Without dropout, attention is one fused node; asking for the probabilities takes the
    composition instead. Same output, same gradients, same last_weights."""
    md.manual_seed(0)
    attention = MultiHeadSelfAttention(D, HEADS, causal=causal, device=device, dtype="float64")
    x, mask = rng.standard_normal((B, T, D)), tensor(MASK, device)
    results = []
    for composed in (False, True):
        for p in attention.parameters():
            p.grad = None
        inputs = tensor(x, device, requires_grad=True)
        out = attention(inputs, mask, return_weights=composed)
        out = out[0] if composed else out
        out.backward(np.random.default_rng(1).standard_normal(out.shape))
        results.append([out.numpy(), inputs.xp.to_numpy(inputs.grad), attention.last_weights.numpy(),
                        *(p.xp.to_numpy(p.grad) for p in attention.parameters())])
    for fused, composed in zip(*results):
        np.testing.assert_allclose(fused, composed, rtol=1e-12, atol=1e-14)


def test_attention_dropout_is_fused(monkeypatch, rng):
    """Attention dropout runs inside the fused node too, in training; evaluation drops nothing."""
    calls = []
    fused = md.autograd.ops.scaled_dot_product_attention
    monkeypatch.setattr(md.autograd.ops, "scaled_dot_product_attention",
                        lambda *args: calls.append(args[-1]) or fused(*args))
    attention = MultiHeadSelfAttention(D, HEADS, dropout=0.5, dtype="float64")
    x = tensor(rng.standard_normal((B, T, D)), "cpu")
    dropped = attention(x).numpy()
    attention.eval()
    kept = attention(x).numpy()
    assert calls == [0.5, 0.0], "training passes the dropout probability, evaluation none"
    assert not np.allclose(dropped, kept), "dropout changed the training output"
    np.testing.assert_allclose(attention.last_weights.numpy().sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mlm", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_every_transformer_model_takes_the_fused_path(monkeypatch, causal, mlm, training):
    """A classifier's and a masked-LM's forward AND backward go through the fused attention
    node, once per layer, in training (dropout on) and in evaluation; the composed softmax
    over (B, h, T, T) scores never runs."""
    from minidl.autograd.ops import attention, losses

    counts = {"forward": 0, "backward": 0, "softmax": 0}
    node = attention.ScaledDotProductAttention
    forward, backward, softmax = node.forward, node.backward, losses.Softmax.forward

    def counted(name, fn):
        return staticmethod(lambda *args: counts.__setitem__(name, counts[name] + 1) or fn(*args))

    monkeypatch.setattr(node, "forward", counted("forward", forward))
    monkeypatch.setattr(node, "backward", counted("backward", backward))
    monkeypatch.setattr(losses.Softmax, "forward", counted("softmax", softmax))
    model = classifier("cpu", num_layers=2, dropout=0.1, causal=causal, mlm_head=mlm,
                       pooling="last" if causal else "mean")
    model.train(training)
    ids, mask, lengths = batch(IDS, "cpu")
    if mlm:
        loss = md.cross_entropy(model.masked_lm_logits(ids, mask, md.tensor(np.array([1, 6]))),
                                md.tensor(np.array([3, 6])))
    else:
        loss = md.cross_entropy(model(ids, mask, lengths).logits, md.tensor(np.array([0, 1])))
    loss.backward()
    assert counts == {"forward": 2, "backward": 2, "softmax": 0}


def test_attention_weights_are_kept_and_skip_padding(device, rng):
    attention = MultiHeadSelfAttention(D, HEADS, device=device, dtype="float64")
    attention(tensor(rng.standard_normal((B, T, D)), device, requires_grad=True), tensor(MASK, device))
    weights = attention.last_weights
    assert weights.shape == (B, HEADS, T, T) and not weights.requires_grad
    weights = weights.numpy()
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(weights[0, :, :, 3:] == 0), "padded keys get exactly zero weight"


def test_a_fully_padded_row_gives_no_nan(device, rng):
    """A query that may see no key at all attends uniformly instead of dividing 0 by 0."""
    attention = MultiHeadSelfAttention(D, HEADS, causal=True, device=device, dtype="float64")
    mask = MASK.copy()
    mask[0] = 0
    out = attention(tensor(rng.standard_normal((B, T, D)), device), tensor(mask, device))
    assert np.all(np.isfinite(out.numpy()))
    np.testing.assert_allclose(attention.last_weights.numpy()[0], 1.0 / T, rtol=1e-12)


def test_causal_attention_ignores_the_future(device, rng):
    """Changing the tokens after position t leaves the outputs at 0..t unchanged."""
    attention = MultiHeadSelfAttention(D, HEADS, causal=True, device=device, dtype="float64")
    x = rng.standard_normal((B, T, D))
    before = attention(tensor(x, device)).numpy()
    for t in range(T - 1):
        changed = x.copy()
        changed[:, t + 1:] = rng.standard_normal((B, T - t - 1, D))
        after = attention(tensor(changed, device)).numpy()
        np.testing.assert_array_equal(after[:, :t + 1], before[:, :t + 1])
        assert not np.allclose(after[:, t + 1:], before[:, t + 1:])


def test_head_count_must_divide_d_model():
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        MultiHeadSelfAttention(8, 3)


# --- encoder layers -----------------------------------------------------------------------
@pytest.mark.parametrize("pre_norm", [True, False], ids=["pre-LN", "post-LN"])
def test_encoder_layer_gradcheck(device, rng, pre_norm):
    md.manual_seed(0)
    layer = TransformerEncoderLayer(D, HEADS, 16, dropout=0.0, pre_norm=pre_norm, device=device, dtype="float64")
    x = tensor(rng.standard_normal((B, T, D)), device, requires_grad=True)
    mask = tensor(MASK, device)
    check(lambda x, *params: layer(x, mask), [x, *trainable(layer)])


def test_final_norm_only_for_pre_ln():
    assert TransformerEncoder(2, D, HEADS, 16, pre_norm=True).final_norm is not None
    assert TransformerEncoder(2, D, HEADS, 16, pre_norm=False).final_norm is None


def test_position_embedding_refuses_sequences_past_max_len():
    positions = PositionEmbedding(4, D)
    with pytest.raises(ValueError, match="sequences of 5 tokens but the model learned only max_len=4"):
        positions(md.zeros(1, 5, D))


# --- the classifier -------------------------------------------------------------------------
CONFIGS = {"cls": dict(pooling="cls"), "mean": dict(pooling="mean"), "causal": dict(causal=True)}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_classifier_gradcheck(device, config):
    model = classifier(device, **CONFIGS[config])
    ids, mask, lengths = batch(IDS, device)
    check(lambda *params: model(ids, mask, lengths).logits, trainable(model))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_padding_changes_nothing(device, config):
    """Extra padding, or other ids at the padded positions, leave every real position alone."""
    model = classifier(device, num_layers=2, **CONFIGS[config])
    ids, mask, lengths = batch(IDS, device)
    logits = model(ids, mask, lengths).logits.numpy()
    hidden = model.encode(ids, mask).numpy()
    padded = model(*batch(np.pad(IDS, ((0, 0), (0, 3))), device)).logits.numpy()
    np.testing.assert_allclose(padded, logits, rtol=1e-12, atol=1e-12)
    other_ids = IDS.copy()
    other_ids[0, 3:] = [7, 8]  # the same mask: positions 3 and 4 of review 0 stay padding
    changed = model.encode(md.tensor(other_ids, device=device), mask).numpy()
    np.testing.assert_allclose(changed[MASK > 0], hidden[MASK > 0], rtol=1e-12, atol=1e-12)


def test_the_decoder_reads_the_last_real_word(device):
    """Each review's logits equal those of the review run alone, cut at its last real word."""
    model = classifier(device, num_layers=2, causal=True)
    logits = model(*batch(IDS, device)).logits.numpy()
    for b, n in enumerate(MASK.sum(axis=1).astype(int)):
        alone = model(*batch(IDS[b:b + 1, :n], device)).logits.numpy()
        np.testing.assert_allclose(logits[b], alone[0], rtol=1e-12, atol=1e-12)


def test_classifier_options_are_checked():
    with pytest.raises(ValueError, match="pooling must be one of cls, mean, last"):
        TransformerClassifier(V, d_model=D, num_heads=HEADS, pooling="max")
    with pytest.raises(ValueError, match='use pooling="last"'):
        TransformerClassifier(V, d_model=D, num_heads=HEADS, causal=True, pooling="cls")


def test_pretrained_vectors_of_another_width_are_projected(device):
    vectors = np.random.default_rng(0).standard_normal((V, 6))
    model = TransformerClassifier(V, d_model=D, num_heads=HEADS, embeddings=vectors, mlm_head=True, device=device)
    ids, mask, lengths = batch(IDS, device)
    assert model(ids, mask, lengths).logits.shape == (B, 2)
    assert model.masked_lm_logits(ids, mask).shape == (B, T, V)


# --- the masked-LM head ---------------------------------------------------------------------
def test_masked_lm_logits_shape_and_gradcheck(device):
    model = classifier(device, mlm_head=True)
    ids, mask, _ = batch(IDS, device)
    assert model.masked_lm_logits(ids, mask).shape == (B, T, V)
    # padded positions are scored by nobody; mask them like a loss would
    check(lambda *params: model.masked_lm_logits(ids, mask) * mask.unsqueeze(-1),
          [p for p in trainable(model) if p is not model.out.weight and p is not model.out.bias])


def test_masked_lm_decoder_is_tied_to_the_embedding(device):
    model = classifier(device, mlm_head=True)
    assert not any(p.shape == (V, D) for p in model.parameters() if p is not model.embedding.weight)
    ids, mask, _ = batch(IDS, device)
    model.masked_lm_logits(ids, mask).sum().backward()
    total = md.tensor(model.embedding.weight.grad, dtype="float64").numpy()
    model.zero_grad()
    # the output path alone: the encoder's states as constants
    model.mlm_head(model.encode(ids, mask).detach(), model.embedding.weight).sum().backward()
    output_path = md.tensor(model.embedding.weight.grad, dtype="float64").numpy()
    assert np.all(np.abs(output_path[1:]).sum(axis=1) > 0), "every word's row gets the output product's gradient"
    np.testing.assert_allclose(total[1], output_path[1], rtol=1e-12)  # id 1 is never read: output path only
    assert np.all(np.abs(total - output_path)[2:].sum(axis=1) > 1e-8), "the rows read by the lookup get more"


def test_an_encoder_of_no_layers_is_an_ablation_and_negative_counts_are_refused():
    """num_layers 0 (embeddings and pooling alone) builds, as older checkpoints hold it; -1 built no layer silently."""
    encoder = TransformerEncoder(0, 8, 2, 16)
    x = md.randn(2, 3, 8)
    assert np.allclose(encoder(x).numpy(), encoder.final_norm(x).numpy())
    with pytest.raises(ValueError, match="whole number of layers >= 0, got num_layers=-1"):
        TransformerEncoder(-1, 8, 2, 16)

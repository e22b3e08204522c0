"""The layers' answers to bad input (one line naming the layer, what it expects and what it got), what they
print, and a recurrent layer's initial state: none of these lines ran in a test before (coverage)."""
import numpy as np
import pytest

import minidl as md
from minidl import nn


@pytest.mark.parametrize("build, call, words", [
    (lambda: nn.Dropout(1.5), None, "Dropout: p is the probability of dropping a value, in [0, 1]; got 1.5"),
    (lambda: nn.LayerNorm((2, 6)), None, "LayerNorm normalises the last axis only: pass its size E as an int"),
    (lambda: nn.LayerNorm(6, eps=-1), None, "LayerNorm: eps is added to the variance and must be >= 0 (default 1e-5)"),
    (lambda: md.layer_norm, lambda f: f(md.ones(2, 6), eps=-1.0),      # gave rows of NaN, silently
     "layer_norm: eps is added to the variance and must be >= 0 (default 1e-5), got -1.0"),
    (lambda: nn.LayerNorm(6), lambda m: m(md.zeros(2, 5)), "LayerNorm(6): expected input (..., 6), got shape (2, 5)"),
    (lambda: nn.Embedding, lambda m: m.from_pretrained(np.zeros(3)),
     "from_pretrained: expected a (V, E) table, got shape (3,)"),
    (lambda: nn.MultiHeadSelfAttention(6, 2), lambda m: m(md.zeros(2, 6)),
     "MultiHeadSelfAttention(d_model=6): expected x (B, T, 6), got shape (2, 6)"),
    (lambda: nn.MultiHeadSelfAttention(6, 2), lambda m: m(md.zeros(2, 3, 6), mask=md.ones(2, 4)),
     "MultiHeadSelfAttention: mask must be (B, T) = (2, 3) like x, got (2, 4)"),
    (lambda: nn.GRU(4, 6), lambda m: m(md.zeros(2, 3, 5)), "GRU(4, 6): expected input (B, T, 4), got shape (2, 3, 5)"),
    (lambda: nn.GRU(3, 4), lambda m: m(md.tensor(np.ones((2, 5, 3), dtype=np.int64))),   # blamed an h0 not given
     "GRU(3, 4): x must hold floats (e.g. embeddings), got int64; look ids up in an Embedding first"),
])
def test_bad_input_is_one_line_naming_the_layer(build, call, words):
    with pytest.raises((ValueError, TypeError)) as raised:
        layer = build()
        call(layer)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_layers_print_their_sizes_and_options():
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.ElmanRNN(4, 6, nonlinearity="tanh"), nn.GRU(6, 6),
                          nn.Dropout(0.25), nn.LayerNorm(6, elementwise_affine=False),
                          nn.MultiHeadSelfAttention(6, 2, causal=True), nn.PositionEmbedding(8, 6),
                          nn.Embedding.from_pretrained(md.zeros(3, 2)))
    lines = repr(model).splitlines()
    assert lines[1:6] == ["  (0): Embedding(10, 4, padding_idx=0)", "  (1): ElmanRNN(4, 6, nonlinearity='tanh')",
                          "  (2): GRU(6, 6)", "  (3): Dropout(p=0.25)",
                          "  (4): LayerNorm(6, eps=1e-05, elementwise_affine=False)"]
    assert lines[6:8] == ["  (5): MultiHeadSelfAttention(", "    d_model=6, num_heads=2, causal=True"]
    assert "  (6): PositionEmbedding(max_len=8, d_model=6)" in lines and lines[-2:] == [
        "  (7): Embedding(3, 2, freeze=True)", ")"]
    assert repr(nn.TransformerEncoderLayer(6, 2, 12, pre_norm=False)).splitlines()[1] == "  pre_norm=False"


@pytest.mark.parametrize("layer", [nn.GRU, nn.ElmanRNN])
def test_an_initial_state_continues_a_sequence(layer, device):
    """h0 = the last state of the first part: the second part's states are the whole sequence's (no test gave
    h0 before); a state of the wrong shape is the op's ShapeError naming h0."""
    md.manual_seed(0)
    rnn = layer(3, 4, device=device, dtype="float64")
    x = md.randn(2, 5, 3, device=device, dtype="float64")
    first = rnn(x[:, :2])
    rest = rnn(x[:, 2:], first[:, -1])
    np.testing.assert_allclose(np.concatenate([first.numpy(), rest.numpy()], axis=1), rnn(x).numpy(), atol=1e-12)
    with pytest.raises(md.ShapeError, match=r"h0 \(B, H\).* h0 \(2, 5\)"):
        rnn(x, md.zeros(2, 5, device=device, dtype="float64"))

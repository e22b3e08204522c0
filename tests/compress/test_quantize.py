"""Int8 quantisation: the per-channel error bound, the int8 linear within its bound of the
dequantised reference on every backend and packed once, int8 models close to the float ones,
checkpoints ~4× smaller that reload exactly, and the straight-through estimator."""
import os
import numpy as np
import pytest

import minidl as md
from minidl import nn
from minidl.compress.quantize import (FakeQuantize, QuantizedEmbedding, QuantizedLinear, dequantize, fake_quantize,
                                      quantize, quantize_per_channel)
from minidl.models.transformer import TransformerClassifier
from minidl.nn import Linear, ReLU, Sequential


def _weight(rng):
    w = rng.standard_normal((40, 30)) * rng.uniform(0.01, 3.0, size=30)  # columns of different sizes
    w[:, 7] = 0.0  # an all-zero channel: scale guarded to 1
    return w


def test_error_at_most_half_a_step_per_element(rng, device):
    w = _weight(rng)
    q, scale = quantize_per_channel(md.tensor(w, dtype="float64", device=device))
    assert q.dtype == "int8" and scale.dtype == "float32" and q.device == md.tensor(0.0, device=device).device
    q, scale = q.numpy(), scale.numpy()
    assert q.shape == (40, 30) and scale.shape == (30,)
    assert np.abs(q.astype(int)).max() == 127 and q.min() >= -127
    np.testing.assert_allclose(scale[np.arange(30) != 7], np.abs(w).max(axis=0)[np.arange(30) != 7] / 127,
                               rtol=1e-6)
    assert scale[7] == 1.0 and not q[:, 7].any()
    error = np.abs(w - dequantize(q, scale, "float64"))
    assert np.all(error <= scale / 2 * (1 + 1e-6))
    q_np, scale_np = quantize_per_channel(w)  # NumPy in, NumPy out, same numbers
    np.testing.assert_array_equal(q_np, q)
    np.testing.assert_array_equal(scale_np, scale)
    w[3, 4] = np.nan                          # stored as 0 before: a diverged weight quantised silently
    with pytest.raises(ValueError, match="holds NaN or Inf"):
        quantize_per_channel(md.tensor(w, dtype="float64", device=device))


def _mlp(device):
    md.manual_seed(0)
    return Sequential(Linear(64, 256, device=device), ReLU(), Linear(256, 256, device=device), ReLU(),
                      Linear(256, 10, device=device))


def test_int8_model_is_close_to_the_float_model(rng, device):
    model = _mlp(device)
    x = md.tensor(rng.standard_normal((32, 64)), device=device)
    before = model(x).numpy()
    report = quantize(model)
    assert [r.name for r in report] == ["0", "2", "4"]
    assert all(r.max_abs_error <= r.max_scale / 2 * (1 + 1e-6) for r in report)
    assert all(isinstance(model[i], QuantizedLinear) for i in (0, 2, 4))
    after = model(x).numpy()
    assert after.dtype == np.float32
    assert np.abs(after - before).max() < 0.02 * np.abs(before).max()
    assert (after.argmax(1) == before.argmax(1)).mean() >= 0.9


def _quantized_linear(rng, device, d_in=96, d_out=80):
    md.manual_seed(0)
    linear = Linear(d_in, d_out, device=device)
    linear.weight.data = md.tensor(rng.standard_normal((d_in, d_out)) * rng.uniform(0.01, 2.0, size=d_out),
                                   device=device).data  # channels of different sizes
    return QuantizedLinear.from_linear(linear)


def test_int8_linear_is_within_the_activation_rounding_bound_of_the_dequantised_reference(rng, device):
    layer = _quantized_linear(rng, device)
    x_np = (rng.standard_normal((3, 50, 96)) * 2 + 0.5).astype(np.float32)  # any leading axes, off-centre
    y = layer(md.tensor(x_np, device=device)).numpy()
    assert y.shape == (3, 50, 80) and y.dtype == np.float32
    w = dequantize(layer.qweight.numpy(), layer.scale.numpy(), "float64")     # (D_in, D_out)
    reference = x_np.astype(np.float64) @ w + layer.bias.numpy()
    # torch-CPU's int8 GEMM rounds x to uint8 steps of s_x = range(x) / 255 (/ 127 for 7-bit
    # activations): |x − x̂| ≤ s_x / 2, so |y − reference|_c ≤ s_x / 2 · Σ_i |w_ic|. NumPy and
    # CUDA multiply by q · scale in float32, which only rounds (the second term).
    s_x = (max(x_np.max(), 0) - min(x_np.min(), 0)) / 127 if device == "torch" else 0.0
    bound = s_x / 2 * np.abs(w).sum(axis=0) + 1e-5 * (np.abs(x_np) @ np.abs(w)) + 1e-6
    error = np.abs(y - reference)
    assert np.all(error <= bound), (error / bound).max()
    assert error.max() > 0.02 * bound.max() or device != "torch"  # torch-CPU: the int8 kernel really rounded x


def test_packed_once_and_again_when_the_buffers_get_new_arrays(rng, device, monkeypatch):
    layer = _quantized_linear(rng, device)
    backend = type(layer.qweight.xp)
    packs = []
    original = backend.int8_linear_pack
    monkeypatch.setattr(backend, "int8_linear_pack", lambda xp, *a: packs.append(1) or original(xp, *a))
    x = md.tensor(rng.standard_normal((7, 96)), device=device)
    with md.no_grad():
        first = [layer(x).numpy() for _ in range(4)]
    assert len(packs) == 1 and all(np.array_equal(first[0], y) for y in first)

    other = _quantized_linear(np.random.default_rng(1), device)
    layer.load_state_dict(other.state_dict())                      # new arrays in the same buffers
    with md.no_grad():
        np.testing.assert_array_equal(layer(x).numpy(), other(x).numpy())
        layer(x)
    assert len(packs) == 3                                         # `other` packed once, `layer` once more

    layer.to(device)                                               # already there: nothing changes
    layer(x)
    assert len(packs) == 3
    elsewhere = "torch" if device == "cpu" else "cpu"
    layer.to(elsewhere)
    y = layer(md.tensor(x.numpy(), device=elsewhere)).numpy()
    np.testing.assert_allclose(y, other(x).numpy(), atol=0.05 * np.abs(y).max())  # one path may round x, one not


def test_torch_cpu_kernel_multiplies_by_exactly_the_stored_int8_weights_and_scales(rng):
    import torch

    layer = _quantized_linear(rng, "torch")
    weight, bias = torch.ops.quantized.linear_unpack(layer.packed())
    assert torch.equal(weight.int_repr(), layer.qweight.data.T)   # torch's layout is (D_out, D_in)
    assert torch.equal(weight.q_per_channel_scales().float(), layer.scale.data)
    assert not weight.q_per_channel_zero_points().any()
    assert torch.equal(bias, layer.bias.data)
    assert layer.qweight.dtype == "int8" and layer.state_dict()["qweight"].dtype == np.int8


def test_torch_without_an_int8_kernel_multiplies_by_the_dequantised_weights(rng, monkeypatch):
    """What CUDA gets (torch has no int8 GEMM there), tried on the CPU: q · scale expanded once."""
    monkeypatch.setattr(md.backend.get_backend("torch"), "_int8_kernel_choice", None, raising=False)
    layer = _quantized_linear(rng, "torch")
    x = rng.standard_normal((2, 5, 96)).astype(np.float32)
    y = layer(md.tensor(x, device="torch")).numpy()
    w = dequantize(layer.qweight.numpy(), layer.scale.numpy(), "float64")
    np.testing.assert_allclose(y, x @ w + layer.bias.numpy(), rtol=1e-5, atol=1e-5)


def test_quantized_transformer_teacher_gives_the_float_logits(rng, device):
    """The compression teacher's shape (smaller vocabulary and length): every Linear and the
    embedding table in int8, the tied masked-LM head reading the dequantised table."""
    md.manual_seed(0)
    model = TransformerClassifier(500, d_model=128, num_heads=4, num_layers=2, d_ff=256, max_len=48,
                                  pooling="mean", mlm_head=True, device=device).eval()
    lengths = rng.integers(10, 49, size=6)
    mask_np = (np.arange(48)[None] < lengths[:, None]).astype(np.float32)
    ids, mask, lengths = (md.tensor(a, device=device) for a in
                          (rng.integers(1, 500, size=(6, 48)) * mask_np.astype(np.int64), mask_np, lengths))
    with md.no_grad():
        before = model(ids, mask, lengths).logits.numpy()
        mlm_before = model.masked_lm_logits(ids, mask).numpy()
        quantize(model, embeddings=True)
        after = model(ids, mask, lengths).logits.numpy()
        mlm_after = model.masked_lm_logits(ids, mask).numpy()
    assert isinstance(model.embedding, QuantizedEmbedding) and isinstance(model.out, QuantizedLinear)
    assert np.abs(after - before).max() < 0.05 * np.abs(before).max()
    assert np.abs(mlm_after - mlm_before).max() < 0.05 * np.abs(mlm_before).max()


def test_checkpoint_is_4x_smaller_int8_and_reloads(tmp_path, rng, device):
    model = _mlp(device)
    model.save(tmp_path / "float.npz")
    quantize(model)
    state = model.state_dict()
    assert {k: str(v.dtype) for k, v in state.items() if k.endswith("qweight")} == \
        {"0.qweight": "int8", "2.qweight": "int8", "4.qweight": "int8"}
    assert all(state[f"{i}.scale"].dtype == np.float32 for i in (0, 2, 4))
    assert not any(k.endswith(".weight") for k in state)
    model.save(tmp_path / "int8.npz")
    ratio = (tmp_path / "int8.npz").stat().st_size / (tmp_path / "float.npz").stat().st_size
    assert ratio < 0.35, ratio

    x = md.tensor(rng.standard_normal((4, 64)), device=device)
    fresh = _mlp(device)
    md.manual_seed(7)
    fresh[0].weight.data = fresh[0].weight.data * 3  # different numbers before loading
    quantize(fresh)
    fresh.load(tmp_path / "int8.npz")
    assert fresh[0].qweight.dtype == "int8"
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    fresh.to(dtype="float64")  # integer buffers keep their dtype; the new float64 biases are packed
    assert fresh[0].qweight.dtype == "int8"
    y64 = fresh(md.tensor(x.numpy(), dtype="float64", device=device)).numpy()
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, model(x).numpy(), atol=1e-3 * np.abs(y64).max())


def test_no_gradient_reaches_the_int8_weights_and_x_gets_the_straight_through_one(rng, device):
    model = Sequential(_quantized_linear(rng, device))
    assert model.num_parameters(trainable_only=True) == 0
    x = md.tensor(rng.standard_normal((2, 96)), requires_grad=True, device=device)
    model(x).sum().backward()
    assert model[0].qweight.grad is None and model[0].bias.grad is None
    w = dequantize(model[0].qweight.numpy(), model[0].scale.numpy(), "float64")
    # float32 sums of 96 terms that partly cancel: the error scales with Σ|w|, not with the sum
    np.testing.assert_allclose(md.tensor(x.grad).numpy(), np.broadcast_to(w.sum(axis=1), (2, 96)), rtol=1e-5,
                               atol=1e-6 * np.abs(w).sum(axis=1).max())


def test_fake_quantize_forward_and_straight_through_backward(rng, device):
    w_np = _weight(rng)
    w = md.tensor(w_np, dtype="float64", device=device, requires_grad=True)
    out = fake_quantize(w)
    q, scale = quantize_per_channel(w_np)
    np.testing.assert_array_equal(out.numpy(), dequantize(q, scale, "float64"))  # the stored float32 scales
    g = rng.standard_normal(w_np.shape)
    out.backward(md.tensor(g, dtype="float64", device=device).data)
    np.testing.assert_array_equal(md.tensor(w.grad, dtype="float64").numpy(), g)  # unchanged, bit for bit

    # a fixed, smaller grid clips the large weights: no gradient there
    w.grad = None
    small = np.full(30, 0.01)
    out = fake_quantize(w, scale=small)
    out.backward(md.tensor(g, dtype="float64", device=device).data)
    grad = md.tensor(w.grad, dtype="float64").numpy()
    inside = np.abs(w_np) <= 127 * small
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(grad[inside], g[inside])
    assert not grad[~inside].any()
    assert np.abs(out.numpy()).max() <= 127 * 0.01 + 1e-12
    assert FakeQuantize.op_name() == "fake_quantize"  # the public function's name


def test_refuses_a_bare_linear():
    with pytest.raises(TypeError, match="from_linear"):
        quantize(Linear(4, 4))


def test_quantized_embedding_rows_within_half_a_step_and_file_4x_smaller(tmp_path, device):
    md.manual_seed(0)
    model = md.models.build_model("softmax", 1000, hidden=8, embed_dim=64, device=device)
    ids = md.tensor(np.array([[1, 5, 7, 0], [999, 2, 0, 0]]), device=device)
    table = model.embedding.weight.numpy().astype(np.float64)
    before = model.save(str(tmp_path / "float.npz"))
    report = quantize(model, embeddings=True)
    assert isinstance(model.embedding, QuantizedEmbedding) and report[0].name == "embedding"
    scale = np.abs(table).max(axis=1) / 127
    restored = model.embedding(ids).numpy().astype(np.float64)
    assert np.all(np.abs(restored - table[ids.numpy()]) <= scale[ids.numpy()][..., None] / 2 + 1e-7)
    np.testing.assert_array_equal(model.embedding(ids).numpy()[1, 2:], 0.0)  # the padding row stays 0
    after = model.save(str(tmp_path / "int8.npz"))
    assert os.path.getsize(after) < 0.32 * os.path.getsize(before)  # 1 byte + a scale per row of 64
    fresh = md.models.build_model("softmax", 1000, hidden=8, embed_dim=64, device=device)
    quantize(fresh, embeddings=True)
    fresh.load(after)
    mask, lengths = md.tensor(np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.float32), device=device), \
        md.tensor(np.array([3, 2]), device=device)
    np.testing.assert_array_equal(fresh(ids, mask, lengths).logits.numpy(), model(ids, mask, lengths).logits.numpy())


def test_a_model_with_nothing_to_quantise_is_refused():
    """quantize returned [] and left a GRU's recurrent layer, or a factorised model, float32."""
    from minidl.compress import factorize
    from minidl.models import build_model

    with pytest.raises(ValueError, match="quantize: GRU has no Linear layer to quantise"):
        quantize(build_model("gru", 50, embed_dim=8, hidden=8).rnn)
    low = nn.Sequential(nn.Linear(64, 64))
    factorize(low, rank=8)
    with pytest.raises(ValueError, match="has no Linear layer to quantise .a LowRankLinear"):
        quantize(low)


def test_a_quantised_embedding_follows_the_model_to_float64():
    """After model.to(dtype="float64") its rows stayed float32 (a dtype string of its own) while its
    scales became float64."""
    model = nn.Sequential(nn.Linear(4, 2), nn.Embedding(10, 4))
    quantize(model, embeddings=True)
    ids = md.tensor([[1, 2]])
    before = model[1](ids).numpy()
    model.to(dtype="float64")
    after = model[1](ids)
    assert after.dtype == "float64" and model[1].weight.dtype == "float64"
    np.testing.assert_allclose(after.numpy(), before, rtol=1e-6)
    assert QuantizedEmbedding.from_embedding(nn.Embedding(10, 4, dtype="float64"))(ids).dtype == "float64"

"""Int8 quantisation: the per-channel error bound, int8 models close to the float ones,
checkpoints ~4× smaller that reload exactly, and the straight-through estimator."""
import os
import numpy as np
import pytest

import minidl as md
from minidl.compress.quantize import (FakeQuantize, QuantizedEmbedding, QuantizedLinear, dequantize, fake_quantize, quantize,
                                      quantize_per_channel)
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


def _mlp(device):
    md.manual_seed(0)
    return Sequential(Linear(64, 256, device=device), ReLU(), Linear(256, 256, device=device), ReLU(),
                      Linear(256, 10, device=device))


@pytest.mark.parametrize("mode", ["dequant", "int8"])
def test_int8_model_is_close_to_the_float_model(rng, device, mode):
    model = _mlp(device)
    x = md.tensor(rng.standard_normal((32, 64)), device=device)
    before = model(x).numpy()
    report = quantize(model, mode=mode)
    assert [r.name for r in report] == ["0", "2", "4"]
    assert all(r.max_abs_error <= r.max_scale / 2 * (1 + 1e-6) for r in report)
    assert all(isinstance(model[i], QuantizedLinear) for i in (0, 2, 4))
    after = model(x).numpy()
    assert after.dtype == np.float32
    assert np.abs(after - before).max() < 0.02 * np.abs(before).max()
    assert (after.argmax(1) == before.argmax(1)).mean() >= 0.9


def test_the_two_forward_modes_agree(rng, device):
    model = _mlp(device)
    quantize(model, mode="dequant")
    x = md.tensor(rng.standard_normal((8, 64)), device=device)
    y_dequant = model(x).numpy()
    for i in (0, 2, 4):
        model[i].mode = "int8"
    y_int8 = model(x).numpy()
    # the int8 path also rounds the activations (half a step of max|x_row|/127 each)
    assert np.abs(y_int8 - y_dequant).max() < 0.02 * np.abs(y_dequant).max()


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
    fresh.to(dtype="float64")  # integer buffers keep their dtype
    assert fresh[0].qweight.dtype == "int8"


def test_no_gradient_reaches_the_int8_weights(rng):
    model = _mlp("cpu")
    quantize(model)
    assert model.num_parameters(trainable_only=True) == 0
    x = md.tensor(rng.standard_normal((2, 64)), requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and model[0].qweight.grad is None


def test_fake_quantize_forward_and_straight_through_backward(rng, device):
    w_np = _weight(rng)
    w = md.tensor(w_np, dtype="float64", device=device, requires_grad=True)
    out = fake_quantize(w)
    q, scale = quantize_per_channel(w_np)
    np.testing.assert_allclose(out.numpy(), dequantize(q, scale, "float64"), rtol=1e-6, atol=0)
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
    assert FakeQuantize.op_name() == "fakequantize"


def test_refuses_a_bare_linear_and_bad_modes():
    with pytest.raises(TypeError, match="from_linear"):
        quantize(Linear(4, 4))
    with pytest.raises(ValueError, match="mode"):
        quantize(Sequential(Linear(4, 4)), mode="int4")


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

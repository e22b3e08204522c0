"""Quantisation-aware training: the fake-quantised weight is the int8 layer's q · scale bit for bit,
the activation grid is torch's own and reproduces its int8 GEMM, gradients are the documented
straight-through ones (finite differences where the layer is smooth, torch's fake-quant ops as the
oracle where it is not, NumPy = torch), pruned weights stay 0, conversion keeps the logits, and on
the synthetic corpus QAT ends at least as accurate as post-training int8, in a file that reloads."""
import numpy as np
import pytest
import torch

import minidl as md
from minidl.compress import (QATLinear, QuantizedEmbedding, QuantizedLinear, activation_grid, activation_levels,
                             apply_masks, convert_qat, dequantize, distill, fake_quantize_activations, get_mask,
                             prepare_qat, prune_global_magnitude, quantize, quantize_per_channel)
from minidl.data.batching import batches
from minidl.gradcheck import gradcheck
from minidl.nn import Linear, Parameter, ReLU, Sequential
from minidl.optim import Adam


def _weight(rng, d_in=24, d_out=10):
    w = rng.standard_normal((d_in, d_out)) * rng.uniform(0.05, 2.0, size=d_out)  # channels of different sizes
    w[:, 3] = 0.0                                                                # an all-zero channel
    return w


def _layer(rng, device, dtype="float64", activations=False, pruned=False, d_in=24, d_out=10):
    w = _weight(rng, d_in, d_out)
    mask = None
    if pruned:
        keep = rng.random(w.shape) > 0.5
        w, mask = w * keep, md.tensor(keep, dtype=dtype, device=device)
    return QATLinear(Parameter(w, device=device, dtype=dtype),
                     Parameter(rng.standard_normal(d_out), device=device, dtype=dtype), activations, mask)


def _mlp(device, sizes=(32, 64, 64, 5)):
    md.manual_seed(0)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(a, b, device=device), ReLU()]
    return Sequential(*layers[:-1])


def _grad(t):
    return md.tensor(t.grad, dtype="float64").numpy()


# --- the forward ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fake_quantised_weight_is_the_int8_layers_weight_bit_for_bit(rng, device, dtype):
    layer = _layer(rng, device, dtype, pruned=True)
    w_hat = layer.fake_quantized_weight().numpy()
    q, scale = quantize_per_channel(layer.masked_weight())
    np.testing.assert_array_equal(w_hat, dequantize(q, scale, dtype).numpy())
    int8 = layer.to_quantized()
    assert isinstance(int8, QuantizedLinear) and int8.qweight.dtype == "int8"
    np.testing.assert_array_equal(w_hat, int8.dequantized_weight(dtype).numpy())
    assert not int8.qweight.numpy()[get_mask(layer).numpy() == 0].any()        # pruned: 0 quantises to 0
    x = rng.standard_normal((2, 3, 24))
    y = layer(md.tensor(x, dtype=dtype, device=device)).numpy()
    np.testing.assert_allclose(y, x @ w_hat.astype(np.float64) + layer.bias.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduce_range", [False, True])
def test_activation_grid_is_torchs_choose_qparams(rng, reduce_range):
    """The (s, z) of torch's dynamic int8 GEMM, for off-centre, ReLU-like (z = 0), all-negative
    (z = L), tiny (the 6.1e-5 step floor) and all-zero inputs, from NumPy and torch arrays."""
    levels = 127 if reduce_range else 255
    x = (rng.standard_normal(500) * 2 + 0.7).astype(np.float32)
    for case in (x, np.abs(x), -np.abs(x), x * 1e-5, np.zeros(4, np.float32)):
        scale, zero_point = torch._choose_qparams_per_tensor(torch.tensor(case), reduce_range)
        for array in (case, torch.tensor(case)):
            s, z = activation_grid(array, levels)
            assert s == float(np.float32(scale)) and z == zero_point, (s, z, scale, zero_point)
    assert activation_levels(md.backend.get_backend("cpu")) == 255


def test_activation_fake_quant_values(rng, device):
    x = rng.standard_normal((4, 30)) * 3 + 1
    s, z = activation_grid(x)
    out = fake_quantize_activations(md.tensor(x, dtype="float64", device=device), levels=255).numpy()
    codes = np.round(x / s) + z
    assert 0 <= codes.min() and codes.max() <= 255
    np.testing.assert_allclose(out, (codes - z) * s, rtol=0, atol=1e-12)
    assert np.abs(out - x).max() <= s / 2 * (1 + 1e-9)
    assert len(np.unique(out)) <= 256


ENGINES = [(e, r) for e, r in (("x86", False), ("x86", True), ("onednn", False))
           if e in torch.backends.quantized.supported_engines]


@pytest.mark.parametrize("engine,reduce_range", ENGINES)
def test_activation_qat_reproduces_the_torch_int8_gemm(rng, monkeypatch, engine, reduce_range):
    """What the QAT layer computes is what its int8 conversion computes on torch-CPU: off by
    float32 summation order and, rarely, one code of one input at a rounding tie (fbgemm's
    fused multiply-add) -- against the activation rounding a plain float layer is off by."""
    monkeypatch.setattr(md.backend.get_backend("torch"), "_int8_kernel_choice", (engine, reduce_range),
                        raising=False)
    layer = _layer(rng, "torch", "float32", activations=True, d_in=96, d_out=80)
    assert activation_levels(layer.weight.xp) == (127 if reduce_range else 255)
    x = md.tensor((rng.standard_normal((3, 50, 96)) * 2 + 0.5).astype(np.float32), device="torch")
    with md.no_grad():
        qat = layer(x).numpy().astype(np.float64)
        int8 = layer.to_quantized()(x).numpy().astype(np.float64)
    w = layer.fake_quantized_weight().numpy().astype(np.float64)
    x_np = x.numpy().astype(np.float64)
    plain = x_np @ w + layer.bias.numpy()
    s, _ = activation_grid(x.data, activation_levels(layer.weight.xp))
    one_code = s * np.abs(w).max(axis=0) + 1e-5 * (np.abs(x_np) @ np.abs(w)) + 1e-5
    assert np.all(np.abs(int8 - qat) <= one_code), (np.abs(int8 - qat) / one_code).max()
    assert np.abs(int8 - qat).max() < 0.05 * np.abs(int8 - plain).max()


# --- gradients -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pruned", [False, True])
def test_gradcheck_x_and_bias(rng, device, pruned):
    """With W held, y = x @ fq_w(W ⊙ M) + b is affine in x and b: finite differences apply."""
    layer = _layer(rng, device, pruned=pruned, d_in=6, d_out=4)
    layer.weight.requires_grad = False
    x = md.tensor(rng.standard_normal((2, 3, 6)), dtype="float64", device=device, requires_grad=True)
    result = gradcheck(lambda x, b: layer(x), [x, layer.bias])
    assert result.ok, str(result)


def _torch_oracle(w, b, x, g, mask, activations):
    """y = fq(x) @ fq_w(W ⊙ M) + b through torch's own fake-quant ops and their STE gradients."""
    w, b, x = (torch.tensor(a, requires_grad=True) for a in (w, b, x))
    wm = w if mask is None else w * torch.tensor(mask)
    peak = wm.detach().abs().amax(dim=0)
    scale = torch.where(peak > 0, peak / 127, torch.ones_like(peak)).float()
    w_hat = torch.fake_quantize_per_channel_affine(wm, scale, torch.zeros_like(scale, dtype=torch.int32), 1, -127, 127)
    if activations:
        s, z = torch._choose_qparams_per_tensor(x.detach().float(), False)
        x_in = torch.fake_quantize_per_tensor_affine(x, float(np.float32(s)), z, 0, 255)
    else:
        x_in = x
    y = x_in @ w_hat + b
    (y * torch.tensor(g)).sum().backward()
    return y.detach().numpy(), w.grad.numpy(), b.grad.numpy(), x.grad.numpy()


@pytest.mark.parametrize("activations", [False, True])
@pytest.mark.parametrize("pruned", [False, True])
def test_straight_through_gradients_match_torch_and_numpy_matches_torch(activations, pruned):
    rng = np.random.default_rng(1)
    results = {}
    for device in ("cpu", "torch"):
        layer = _layer(np.random.default_rng(1), device, activations=activations, pruned=pruned)
        x_np = rng.standard_normal((2, 5, 24)) * 2 + 0.3 if device == "cpu" else results["cpu"][-1]
        g = rng.standard_normal((2, 5, 10)) if device == "cpu" else results["cpu"][-2]
        x = md.tensor(x_np, dtype="float64", device=device, requires_grad=True)
        y = layer(x)
        y.backward(md.tensor(g, dtype="float64", device=device).data)
        results[device] = (y.numpy(), _grad(layer.weight), _grad(layer.bias), _grad(x), layer, g, x_np)
    (y, dw, db, dx, layer, g, x_np), other = results["cpu"], results["torch"]
    for mine, theirs in zip((y, dw, db, dx), other):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)        # NumPy = torch, float64
    mask = None if get_mask(layer) is None else get_mask(layer).numpy()
    expected = _torch_oracle(layer.weight.numpy(), layer.bias.numpy(), x_np, g, mask, activations)
    tol = 1e-6 if activations else 1e-10       # torch's per-tensor fake quant dequantises in float32 (same codes)
    for mine, theirs in zip((y, dw, db, dx), expected):
        np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol)
    if pruned:
        assert not dw[mask == 0].any()                                           # pruned weights: no gradient


# --- prepare / convert ------------------------------------------------------------------------------

def test_prepare_shares_parameters_keeps_masks_and_convert_keeps_the_logits(rng, device):
    model = _mlp(device)
    prune_global_magnitude(model, 0.5)
    params, keys = list(model.parameters()), set(model.state_dict())
    report = prepare_qat(model)
    assert [r.name for r in report] == ["0", "2", "4"] and all(isinstance(model[i], QATLinear) for i in (0, 2, 4))
    assert sum(r.sparsity * np.prod(r.shape) for r in report) == pytest.approx(0.5 * sum(
        np.prod(r.shape) for r in report), abs=1)
    assert all(a is b for a, b in zip(model.parameters(), params)) and set(model.state_dict()) == keys
    pruned = {i: get_mask(model[i]).numpy() == 0 for i in (0, 2, 4)}
    before = {i: model[i].weight.numpy().copy() for i in (0, 2, 4)}

    optimizer = Adam(model.parameters(), lr=1e-2)             # built afterwards: it trains the QAT layers
    for _ in range(5):                                        # no apply_masks: the mask in the forward suffices
        x = md.tensor(rng.standard_normal((16, 32)), device=device)
        loss = md.cross_entropy(model(x), md.tensor(rng.integers(0, 5, 16), device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for i in (0, 2, 4):
        w = model[i].weight.numpy()
        assert not w[pruned[i]].any() and not np.array_equal(w, before[i])
    assert apply_masks(model) == 3

    x = md.tensor(rng.standard_normal((8, 32)), device=device)
    with md.no_grad():
        qat = model(x).numpy()
        report = convert_qat(model)
        int8 = model(x).numpy()
    assert [r.name for r in report] == ["0", "2", "4"] and all(isinstance(model[i], QuantizedLinear) for i in (0, 2, 4))
    assert all(r.max_abs_error <= r.max_scale / 2 * (1 + 1e-6) for r in report)
    assert all(not model[i].qweight.numpy()[pruned[i]].any() for i in (0, 2, 4))
    if device == "cpu":
        np.testing.assert_array_equal(int8, qat)               # no activation rounding: the same numbers
    else:
        assert np.abs(int8 - qat).max() < 0.02 * np.abs(qat).max()


def test_pruning_a_prepared_model_by_name_masks_its_qat_layers(rng, device):
    """prune's default targets are Linear layers; after prepare_qat, name the weights."""
    model = _mlp(device)
    prepare_qat(model)
    prune_global_magnitude(model, 0.6, parameters=["0.weight", "2.weight"])
    mask = get_mask(model[0]).numpy()
    assert 0.3 < (mask == 0).mean() < 0.9 and get_mask(model[4]) is None
    assert not model[0].fake_quantized_weight().numpy()[mask == 0].any()
    assert "pruned" in repr(model[0]) and "pruned" not in repr(model[4])


def test_qat_checkpoint_is_the_float_models(tmp_path, rng):
    model = _mlp("cpu")
    prepare_qat(model, activations=True)
    model.save(tmp_path / "qat.npz")
    fresh = _mlp("cpu")
    md.manual_seed(3)
    fresh[0].weight.data = fresh[0].weight.data * 2
    fresh.load(tmp_path / "qat.npz")                            # the float model reads it as its own
    prepare_qat(fresh, activations=True)
    x = md.tensor(rng.standard_normal((4, 32)))
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    assert "fake int8 weights and activations" in repr(model)


def test_nothing_to_convert_is_refused_clearly():
    with pytest.raises(TypeError, match="QATLinear.from_linear"):
        prepare_qat(Linear(4, 4))
    with pytest.raises(ValueError, match="no Linear layer"):
        prepare_qat(Sequential(ReLU()))
    model = _mlp("cpu")
    with pytest.raises(ValueError, match=r"no QATLinear.*quantize\(model\)"):
        convert_qat(model)
    prepare_qat(model)
    with pytest.raises(ValueError, match="already QATLinear"):
        prepare_qat(model)
    with pytest.raises(TypeError, match="to_quantized"):
        convert_qat(model[0])
    convert_qat(model)
    with pytest.raises(ValueError, match="no QATLinear"):
        convert_qat(model)
    with pytest.raises(TypeError, match="Parameter"):
        QATLinear(md.tensor(np.zeros((3, 2))))


# --- QAT against post-training int8 on a small task -------------------------------------------------------

@pytest.fixture(scope="module")
def float_transformer():
    """A one-layer transformer on the synthetic corpus (≈0.85 test accuracy, ~2 s)."""
    from minidl.train import TrainConfig, fit
    from minidl.train.prepare import prepare

    config = TrainConfig(model="transformer", hidden=16, embed_dim=16, max_length=40,
                         model_options={"num_heads": 2, "num_layers": 1, "d_ff": 32, "max_len": 40}, epochs=4,
                         lr=0.01, optimizer="adamw", weight_decay=0.01, train_limit=2000, patience=None)
    result = fit(config, progress=False, log=lambda *_: None)
    assert result.test["accuracy"] > 0.75, result.test
    return result.model, config, prepare(config)


def _copy(model, config, prepared):
    from minidl.train.trainer import build

    fresh, _ = build(config, prepared)
    fresh.load_state_dict(model.state_dict())
    return fresh


def qat_against_ptq(float_transformer, path):
    """(float, PTQ, QAT fake-quantised, QAT converted) test accuracies; the converted model saved at ``path``."""
    from minidl.train.trainer import evaluate

    teacher, config, prepared = float_transformer
    score = lambda m: evaluate(m, prepared.test)["accuracy"]  # noqa: E731
    ptq = _copy(teacher, config, prepared)
    quantize(ptq, embeddings=True)
    qat = _copy(teacher, config, prepared)
    prepare_qat(qat)
    distill(qat, teacher, prepared.train, prepared.validation, epochs=2, lr=1e-3, alpha=0.5, cache_teacher=True,
            log=None)
    fake = score(qat)
    convert_qat(qat, embeddings=True)
    qat.save(path)
    return score(teacher), score(ptq), fake, score(qat), qat


def test_qat_is_at_least_as_accurate_as_post_training_int8_and_reloads(float_transformer, tmp_path):
    teacher, config, prepared = float_transformer
    accuracy, ptq, fake, qat, model = qat_against_ptq(float_transformer, tmp_path / "qat-int8.npz")
    assert ptq >= accuracy - 0.02 and qat >= ptq - 0.01, (accuracy, ptq, qat)
    assert abs(qat - fake) <= 0.005                # the converted model is the fake-quantised one (embedding aside)
    assert isinstance(model.embedding, QuantizedEmbedding) and not any(
        isinstance(m, (QATLinear, Linear)) for m in model.modules())

    fresh = _copy(teacher, config, prepared)       # report.py's int8 rows: quantize(fresh, embeddings=True), load
    quantize(fresh, embeddings=True)
    fresh.load(tmp_path / "qat-int8.npz")
    batch = next(iter(batches(prepared.test, 64, shuffle=False)))
    with md.no_grad():
        np.testing.assert_array_equal(fresh(batch.ids, batch.mask, batch.lengths).logits.numpy(),
                                      model(batch.ids, batch.mask, batch.lengths).logits.numpy())

"""Task 5: int8 quantisation per output channel and the straight-through estimator
(minidl/compress/quantize.py: _scales, _quantize_array, FakeQuantize.backward)."""
import numpy as np

from minidl.assignment.checks import check_backends, check_close, check_outputs, expected, fixed, tensor
from minidl.compress import dequantize, fake_quantize, quantize_per_channel
from minidl.compress.quantize import FakeQuantize


def weight():
    w = fixed((5, 4), seed=1, scale=0.8)
    w[:, 2] = 0.0  # an all-zero column: scale 1, q 0
    return w


CONTEXT = "W (5, 4) with fixed float64 values, column 2 all zero"
CLIPPING = np.array([0.004, 0.006, 1.0, 0.005])  # a fixed scale that clips the larger weights


def case_quantize():
    q, scale = quantize_per_channel(weight())
    return {"q": q, "scale": scale, "fake": fake_quantize(tensor(weight()))}


def case_fake_quantize_clipped():
    w = tensor(weight())
    # the op, not the given wrapper fake_quantize: rebuilt from other ops, it would need no FakeQuantize.backward
    out = FakeQuantize.apply(w, scale=CLIPPING)
    out.backward(fixed((5, 4), seed=2))
    return {"out": out, "grad": w.grad}


def test_quantize_per_channel():
    got = case_quantize()
    check_outputs("quantize_per_channel / fake_quantize", got, expected(__file__, "quantize"), CONTEXT)
    q, scale = got["q"], np.asarray(got["scale"], np.float64)
    assert q.dtype == np.int8, f"quantize_per_channel: q is {q.dtype}, expected int8"
    error = np.abs(weight() - dequantize(q, scale, "float64"))
    worst = np.unravel_index(int(np.argmax(error - scale / 2)), error.shape)
    assert np.all(error <= scale / 2 * (1 + 1e-6)), (
        f"quantize_per_channel: |W - q·scale|{list(worst)} = {error[worst]:.4g} exceeds scale/2 = "
        f"{scale[worst[1]] / 2:.4g} ({CONTEXT})")


def test_the_straight_through_estimator():
    check_outputs("FakeQuantize (fixed scale [0.004, 0.006, 1, 0.005])", case_fake_quantize_clipped(),
                  expected(__file__, "fake_quantize_clipped"),
                  f"{CONTEXT}; upstream gradient fixed; the gradient passes where |W| <= 127·scale, else 0")


def test_without_a_fixed_scale_nothing_is_clipped():
    w = tensor(weight())
    upstream = fixed((5, 4), seed=3)
    fake_quantize(w).backward(upstream)
    check_close("FakeQuantize.backward: dL/dW", w.grad, upstream,
                f"{CONTEXT}; the scale from W itself clips nothing, so the gradient passes unchanged")


def test_the_same_on_the_torch_backend():
    # _scales, _quantize_array and the backward run on torch tensors too (written with xp, not np)
    check_backends("fake_quantize (scales from W)", fake_quantize, {"w": weight()})
    check_backends("fake_quantize (a fixed scale that clips)", lambda w: fake_quantize(w, scale=CLIPPING),
                   {"w": weight()})

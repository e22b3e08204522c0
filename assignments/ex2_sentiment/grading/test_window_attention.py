"""Task 5: restricted self-attention within a window, forward and backward
(minidl/autograd/ops/window_attention.py)."""
import numpy as np

from minidl.assignment.checks import check_backends, check_gradients, check_outputs, describe, expected, fixed, tensor
from minidl.autograd.function import mask_array
from minidl.autograd.ops.window_attention import WindowAttention   # the op, not the given wrapper window_attention

B, T, D, RADIUS = 2, 7, 4, 2
MASK = np.array([[1.0] * 7, [1.0] * 5 + [0.0] * 2])  # the second review has 5 words, then padding


def inputs():
    return {"q": fixed((B, T, D), seed=1), "k": fixed((B, T, D), seed=2), "v": fixed((B, T, D), seed=3)}


def _attend(q, k, v, radius=RADIUS):
    return WindowAttention.apply(q, k, v, mask_array(MASK, q, "window_attention"), radius)


def case_window_attention():
    out = _attend(*(tensor(x) for x in inputs().values()))
    return {"out": out, "weights": out.aux}


def test_forward():
    check_outputs("WindowAttention.forward", case_window_attention(), expected(__file__, "window_attention"),
                  f"{describe(inputs())}, radius {RADIUS}, mask {MASK.astype(int).tolist()}")


def test_backward():
    check_gradients("WindowAttention.backward", _attend,
                    {name: tensor(x) for name, x in inputs().items()})


def test_backward_with_radius_0_and_1():
    for radius in (0, 1):
        check_gradients(f"WindowAttention.backward (radius {radius})",
                        lambda q, k, v: _attend(q, k, v, radius),
                        {name: tensor(x) for name, x in inputs().items()})


def test_the_same_on_the_torch_backend():
    check_backends("window_attention", _attend, inputs())

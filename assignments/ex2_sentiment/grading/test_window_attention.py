"""Task 5: restricted self-attention within a window, forward and backward
(minidl/autograd/ops/window_attention.py)."""
import numpy as np

from minidl.assignment.checks import check_backends, check_gradients, check_outputs, describe, expected, fixed, tensor
from minidl.autograd import ops

B, T, D, RADIUS = 2, 7, 4, 2
MASK = np.array([[1.0] * 7, [1.0] * 5 + [0.0] * 2])  # the second review has 5 words, then padding


def inputs():
    return {"q": fixed((B, T, D), seed=1), "k": fixed((B, T, D), seed=2), "v": fixed((B, T, D), seed=3)}


def case_window_attention():
    out, weights = ops.window_attention(*(tensor(x) for x in inputs().values()), MASK, radius=RADIUS)
    return {"out": out, "weights": weights}


def test_forward():
    check_outputs("WindowAttention.forward", case_window_attention(), expected(__file__, "window_attention"),
                  f"{describe(inputs())}, radius {RADIUS}, mask {MASK.astype(int).tolist()}")


def test_backward():
    check_gradients("WindowAttention.backward", lambda q, k, v: ops.window_attention(q, k, v, MASK, RADIUS)[0],
                    {name: tensor(x) for name, x in inputs().items()})


def test_backward_with_radius_0_and_1():
    for radius in (0, 1):
        check_gradients(f"WindowAttention.backward (radius {radius})",
                        lambda q, k, v: ops.window_attention(q, k, v, MASK, radius)[0],
                        {name: tensor(x) for name, x in inputs().items()})


def test_the_same_on_the_torch_backend():
    check_backends("window_attention", lambda q, k, v: ops.window_attention(q, k, v, MASK, RADIUS)[0], inputs())

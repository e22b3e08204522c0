"""Task 1: the backward passes of sigmoid and tanh (minidl/autograd/ops/activations.py)."""
import numpy as np

from minidl.assignment.checks import check_backends, check_close, check_gradients, fixed, tensor
from minidl.autograd import ops
from minidl.autograd.ops.activations import Sigmoid, Tanh

# the gradient checks differentiate the forwards, given code: a forward returning x would make them trivial
GIVEN = "expected: NumPy's value; the gradient checks differentiate the given forwards, which must compute it"


def sigmoid(x):
    return 1 / (1 + np.exp(-x.numpy()))


def test_sigmoid_backward():
    x = tensor(fixed((2, 5), seed=1, scale=3.0))
    # the op itself: the given wrapper sigmoid(x), rebuilt from other ops, would need neither backward
    check_close("sigmoid(x)", Sigmoid.apply(x), sigmoid(x), GIVEN)
    check_gradients("Sigmoid.backward", Sigmoid.apply, {"x": x})


def test_tanh_backward():
    x = tensor(fixed((2, 5), seed=2, scale=2.0))
    check_close("tanh(x)", Tanh.apply(x), np.tanh(x.numpy()), GIVEN)
    check_gradients("Tanh.backward", Tanh.apply, {"x": x})


def test_sigmoid_and_tanh_inside_a_graph():
    # the upstream gradient is not all ones here: the backward must multiply by it
    x, w = tensor(fixed((3, 4), seed=3, scale=2.0)), tensor(fixed((3, 4), seed=4))
    check_close("sigmoid(x) * tanh(w * x)", ops.sigmoid(x) * ops.tanh(w * x),
                sigmoid(x) * np.tanh(w.numpy() * x.numpy()), GIVEN)
    check_gradients("Sigmoid.backward and Tanh.backward in sigmoid(x) * tanh(w * x)",
                    lambda x, w: ops.sigmoid(x) * ops.tanh(w * x), {"x": x, "w": w})


def test_the_same_on_the_torch_backend():
    check_backends("sigmoid(x) * tanh(x)", lambda x: ops.sigmoid(x) * ops.tanh(x), {"x": fixed((2, 5), seed=5)})

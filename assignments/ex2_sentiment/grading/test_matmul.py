"""Task 2: the backward pass of the matrix product (minidl/autograd/ops/linalg.py)."""
import numpy as np

from minidl.assignment.checks import check_backends, check_close, check_gradients, fixed, tensor
from minidl.autograd import ops
from minidl.autograd.ops.linalg import MatMul

# the gradient checks differentiate the forward, given code: a forward returning 0 would make them trivial
GIVEN = "expected: NumPy's product; the gradient checks differentiate the given MatMul.forward, which must compute it"


def test_matmul_backward():
    a, b = tensor(fixed((3, 4), seed=1)), tensor(fixed((4, 2), seed=2))
    # the op itself: the given wrapper matmul(a, b), rebuilt from other ops, would need no MatMul.backward
    check_close("a @ b", MatMul.apply(a, b), a.numpy() @ b.numpy(), GIVEN)
    check_gradients("MatMul.backward", MatMul.apply, {"a": a, "b": b})


def test_matmul_backward_batched_with_a_shared_matrix():
    # a (2, 3, 4) @ b (4, 5): b is broadcast over the batch, its gradient summed back over it
    a, b = tensor(fixed((2, 3, 4), seed=3)), tensor(fixed((4, 5), seed=4))
    check_close("a @ b", MatMul.apply(a, b), a.numpy() @ b.numpy(), GIVEN)
    check_gradients("MatMul.backward (batched)", MatMul.apply, {"a": a, "b": b})


def test_matmul_backward_of_a_vector_times_a_matrix():
    v, m = tensor(fixed((4,), seed=5)), tensor(fixed((4, 3), seed=6))
    check_close("v @ m", ops.matmul(v, m), v.numpy() @ m.numpy(), GIVEN)
    check_gradients("MatMul.backward (vector @ matrix)", ops.matmul, {"v": v, "m": m})


def test_the_same_on_the_torch_backend():
    check_backends("matmul", ops.matmul, {"a": fixed((2, 3, 4), seed=7), "b": fixed((2, 4, 2), seed=8)})

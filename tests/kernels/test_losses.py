"""Cross-entropy and distillation kernels = the reference paths: loss and gradient."""
import numpy as np
import pytest

import minidl as md
from minidl import kernels
from minidl.autograd import ops
from minidl.compress import distillation_loss
from minidl.gradcheck import gradcheck

from .common import assert_kernel_matches_reference


def _logits(shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    return 3 * rng.standard_normal((*shape, classes)), rng.integers(0, classes, shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("classes", [1, 2, 13, 33, 5000])  # 5000: one row per program
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_reference(kernel_device, classes, reduction, dtype):
    logits, targets = _logits((3, 7), classes)
    mask = np.random.default_rng(1).random((3, 7)) > 0.3
    assert_kernel_matches_reference(lambda z, y, m: ops.cross_entropy(z, y, m, reduction), [logits, targets, mask],
                                    [0], kernel_device, dtype)


def test_cross_entropy_without_a_mask_and_all_masked(kernel_device):
    logits, targets = _logits((5,), 4)
    assert_kernel_matches_reference(ops.cross_entropy, [logits, targets], [0], kernel_device, "float64")
    nothing = np.zeros(5, dtype=bool)  # loss 0 and gradient 0
    assert_kernel_matches_reference(ops.cross_entropy, [logits, targets, nothing], [0], kernel_device, "float64")


SETTINGS = [("kl", 0.5, 2.0), ("kl", 0.0, 1.0), ("kl", 0.3, 4.0), ("kl", 1.0, 2.0), ("mse", 0.5, 2.0),
            ("mse", 0.0, 2.0)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("classes", [5, 13])
@pytest.mark.parametrize("kind,alpha,temperature", SETTINGS)
def test_distillation_matches_reference(kernel_device, kind, alpha, temperature, classes, dtype):
    student, targets = _logits((3,), classes)
    teacher, _ = _logits((3,), classes, seed=1)
    assert_kernel_matches_reference(lambda s, t, y: distillation_loss(s, t, y, alpha, temperature, kind),
                                    [student, teacher, targets], [0], kernel_device, dtype)


@pytest.mark.parametrize("kind", ["kl", "mse"])
def test_distillation_of_an_empty_batch_is_zero_as_cross_entropy_is(kernel_device, kind):
    """The mean divided by the batch size, 0: nan (and NumPy's RuntimeWarning) on every path."""
    for device, mode in (("cpu", "reference"), (kernel_device, "reference"), (kernel_device, "triton")):
        student = md.zeros(0, 3, device=device, requires_grad=True)
        targets = md.tensor(np.zeros(0, dtype=np.int64), device=device)
        with kernels.mode(mode):
            loss = distillation_loss(student, md.zeros(0, 3, device=device), targets, 0.5, 2.0, kind)
            loss.backward()
        assert loss.item() == 0.0 == ops.cross_entropy(student, targets).item() and student.grad.shape == (0, 3)


@pytest.mark.parametrize("loss", ["cross_entropy", "kl", "mse"])
def test_gradcheck_through_the_kernel(kernel_device, loss):
    student, targets = _logits((3,), 4, seed=2)
    teacher = md.tensor(_logits((3,), 4, seed=3)[0], dtype="float64", device=kernel_device)
    student = md.tensor(student, dtype="float64", device=kernel_device, requires_grad=True)
    targets = md.tensor(targets, device=kernel_device)
    if loss == "cross_entropy":
        fn = lambda s: ops.cross_entropy(s, targets, reduction="none")  # noqa: E731
    else:
        fn = lambda s: distillation_loss(s, teacher, targets, 0.3, 2.0, loss)  # noqa: E731
    with kernels.mode("triton"):
        assert fn(student)._ctx.kernel
        result = gradcheck(fn, [student])
    assert result.ok, str(result)

"""The gradient checker itself: it passes correct ops, and catches (and locates) wrong ones."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import minidl as md
from minidl.gradcheck import GradcheckError, gradcheck, numerical_gradient, rel_error

from .cases import as_numpy


def f64(shape, device, seed=0, requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape)
    return md.tensor(data, requires_grad=requires_grad, device=device, dtype="float64")


class MulBySquare(md.Function):
    """out = a · b², with a deliberate bug: d/db should be 2·a·b, the backward forgets the 2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return grad * b * b, grad * a * b


class ForgetsInput(md.Function):
    """out = a + b whose backward returns nothing for b."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def test_rel_error():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0  # the 1e-8 floor avoids 0/0
    assert rel_error(torch.tensor([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(1 / 3)
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0


def test_passes_on_a_correct_op(device):
    x, w = f64((3, 4), device), f64((4, 2), device, seed=1)
    result = gradcheck(lambda x, w: (x @ w).tanh(), [x, w])
    assert result.ok and result
    assert result.max_rel_error < 1e-7
    assert [r.position for r in result.reports] == [0, 1]
    assert "passed" in str(result)


def test_fails_on_a_wrong_backward_and_points_at_the_input(device):
    a, b = f64((3, 4), device), f64((3, 4), device, seed=1)
    result = gradcheck(MulBySquare.apply, [a, b])
    assert not result.ok
    first, second = result.reports
    assert first.ok and first.rel_error < 1e-7  # the gradient of a is right
    assert not second.ok and second.position == 1 and second.shape == (3, 4)
    assert second.analytic / second.numeric == pytest.approx(0.5, rel=1e-6)  # the missing factor 2
    assert second.rel_error == pytest.approx(1 / 3, rel=1e-5)
    text = str(result)
    assert "FAILED" in text and "input 1 (shape (3, 4)), element" in text
    assert "analytic/numeric = 0.5" in text  # the clue to a missing factor, in plain words


def test_reports_an_input_that_got_no_gradient(device):
    a, b = f64((2, 3), device), f64((2, 3), device, seed=1)
    result = gradcheck(ForgetsInput.apply, [a, b])
    assert [r.ok for r in result.reports] == [True, False]
    assert "no gradient" in str(result)


def test_raise_on_fail(device):
    a, b = f64((2,), device), f64((2,), device, seed=1)
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(MulBySquare.apply, [a, b], raise_on_fail=True)
    assert gradcheck(md.mul, [a, b], raise_on_fail=True).ok  # no error when it passes


def test_constants_are_not_checked(device):
    x = f64((2, 3), device)
    targets = md.tensor([0, 2], device=device)
    mask = f64((2,), device, requires_grad=False)
    result = gradcheck(lambda x, y, m: md.cross_entropy(x, y, mask=m > 0, reduction="sum"), [x, targets, mask])
    assert [r.position for r in result.reports] == [0] and result.ok


def test_float32_inputs_are_refused_with_the_fix(device):
    x = md.tensor([1.0, 2.0], requires_grad=True, device=device)
    with pytest.raises(TypeError, match='dtype="float64"'):
        gradcheck(md.exp, [x])


def test_needs_an_input_that_requires_grad(device):
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(md.exp, [f64((2,), device, requires_grad=False)])


def test_inputs_and_their_grads_are_left_as_they_were(device):
    x = f64((2, 3), device)
    before = x.numpy().copy()
    x.grad = x.xp.ones_like(x.data)
    gradcheck(lambda t: (t * t).sum(), [x])
    np.testing.assert_array_equal(x.numpy(), before)  # bit for bit, not just close
    np.testing.assert_array_equal(as_numpy(x.grad), np.ones((2, 3)))


def test_numerical_gradient_of_a_known_function(device):
    x = f64((4,), device)
    grad_output = np.array([1.0, -2.0, 0.5, 3.0])
    (numeric,) = numerical_gradient(lambda t: t * t * t, [x], grad_output)
    np.testing.assert_allclose(numeric, grad_output * 3 * x.numpy() ** 2, rtol=1e-8)


def test_zero_dimensional_input(device):
    x = md.tensor(0.7, requires_grad=True, device=device, dtype="float64")
    result = gradcheck(lambda t: t.sigmoid(), [x])
    assert result.ok and result.reports[0].worst_element == ()


@pytest.mark.parametrize("target", ["cpu", "torch"])
def test_through_a_device_move(device, target):
    x = f64((2, 3), device)
    assert gradcheck(lambda t: (t.to(target) * 2.0).tanh(), [x]).ok


class _DoubleScalingItsGradient(md.autograd.Function):
    """Right gradient, but it writes into the gradient it is handed (a student's ``grad *= 2``)."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        grad *= 2
        return grad


class _CubeInPlace(md.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x.copy())
        x[...] = x ** 3
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return 3 * x ** 2 * grad


def test_an_op_that_writes_into_what_it_was_handed_is_named():
    """A backward writing into its incoming gradient was blamed as "analytic/numeric = 0.5: a missing factor"
    (the finite differences used the changed array); a forward writing into its input wiped the caller's data
    and was blamed as a sign error."""
    x = md.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    with pytest.raises(ValueError, match="a backward changed the gradient it was handed in place"):
        gradcheck(lambda t: _DoubleScalingItsGradient.apply(t), [x])
    with pytest.raises(ValueError, match="fn changed input 0 in place"):
        gradcheck(lambda t: _CubeInPlace.apply(t), [x])
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])   # the caller's values, put back


def test_a_random_fn_is_named_and_a_kink_is_among_the_hints():
    """Dropout in training mode failed as "analytic/numeric = ...: a missing factor or a sign error" (each call
    drew another mask); relu at exactly 0 too, where the two sides' slopes differ."""
    with pytest.raises(ValueError, match="fn gave two outputs for the same inputs .dropout in training mode"):
        gradcheck(lambda t: md.dropout(t, 0.5, training=True), [md.randn(2, 3, dtype="float64", requires_grad=True)])
    kink = gradcheck(md.relu, [md.tensor([0.0, 1.0], dtype="float64", requires_grad=True)])
    assert not kink.ok and "unless the point sits on a kink (relu or abs at 0" in str(kink)


def test_settings_that_cannot_work_are_one_line():
    """points=4 was a KeyError, eps=0 a nan table, tol=-1 failed everything, a bare tensor iterated its rows."""
    x = md.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    for options in ({"points": 4}, {"eps": 0}, {"tol": -1}):
        with pytest.raises(ValueError, match="points must be 3 or 5, eps > 0 and tol >= 0"):
            gradcheck(lambda t: t * t, [x], **options)
    with pytest.raises(TypeError, match=r"for one tensor x give \[x\]"):
        gradcheck(lambda t: t * t, x)


def test_near_a_singularity_the_hint_blames_the_finite_differences_not_the_backward():
    """log at 0.02 reads 2.5e-6 with the default eps (a right backward), and at 0.0015 a step of eps left the
    domain: the hint said "a clean ratio like 2 means a missing factor" (ratio 1, and nan)."""
    near = md.tensor([0.02, 0.5], dtype="float64", requires_grad=True)
    with pytest.warns(RuntimeWarning):
        past = gradcheck(lambda t: t.log(), [md.tensor([0.0015, 0.5], dtype="float64", requires_grad=True)])
    assert "the two agree to 4 digits or more: at a point near a singularity" in str(gradcheck(md.log, [near]))
    assert "a step of eps left the function's domain" in str(past)
    assert gradcheck(md.log, [near], eps=5e-5).ok


def test_an_input_made_by_an_op_is_checked_as_the_leaf_of_its_values(device):
    """x.double(), x.to("torch") or w * 2 keep no .grad: a right tanh failed, "the backward gave this input no
    gradient at all". The caller's tensor keeps its values and graph."""
    x = md.randn(3, 4, requires_grad=True, device=device).double()
    before = x.numpy().copy()
    result = gradcheck(lambda a: a.tanh(), [x])
    assert result.ok, result
    np.testing.assert_array_equal(x.numpy(), before)
    assert not x.is_leaf and x.grad is None


def test_gradcheck_is_reachable_as_the_readme_spells_it():
    """The README writes ``minidl.gradcheck.gradcheck(fn, inputs)`` after a bare ``import minidl``;
    a fresh interpreter, because importing minidl.gradcheck (as this file does) sets the attribute."""
    code = "import minidl; print(minidl.gradcheck.gradcheck.__name__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "gradcheck", run.stderr

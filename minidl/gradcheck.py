"""Gradient checking: compare minidl's hand-written backward with centred finite differences.

    import minidl as md
    from minidl.gradcheck import gradcheck

    x = md.randn(3, 4, dtype="float64", requires_grad=True)
    w = md.randn(4, 2, dtype="float64", requires_grad=True)
    result = gradcheck(lambda x, w: (x @ w).tanh(), [x, w])
    print(result)          # one line per input: worst element, analytic vs numeric
    assert result.ok

How it works. ``fn`` is run once with gradients on and back-propagated with a fixed
random ``grad_output`` g, which gives the analytic ``dL/dx`` of ``L = sum(g * fn(x))``.
The numerical gradient of the same ``L`` comes from nudging one input element at a
time by small steps ±eps, ±2·eps and combining the outputs with the five-point centred
difference (error O(eps⁴); ``points=3`` gives the textbook (f(x+h) − f(x−h)) / 2h).
Both are compared with CS231n's relative error

    rel_error = |a − n| / max(1e-8, |a| + |n|)

A correct smooth op gives ≲ 1e-7 in float64, even for gradient elements as small as
1e-5 (the textbook stencil, with eps = 1e-6, leaves ≈ 1e-10 of round-off, so it reads
1e-6 on an element of size 1e-4). Why float64: float32's round-off (1e-7 relative)
would swamp the difference. Why test points should stay away from kinks (relu at 0,
ties in max) by more than 2·eps: there the one-sided slopes differ and the difference
quotient averages them, which no backward formula reproduces. The same holds near a
singularity (log, sqrt or 1/x within a few eps of 0): the O(eps⁴) error grows with the
derivatives there (log at 0.02: 2.5e-6), and a step past it is NaN; move the points away, or
take a smaller eps (5e-5 there: 2e-11).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .autograd.engine import no_grad
from .autograd.tensor import Tensor


def _as_float64(a):
    """A NumPy float64 copy of a NumPy array, torch tensor, minidl Tensor or number.

    A copy, not a view: the output of ``reshape`` or ``getitem`` shares memory with the
    input, which ``numerical_gradient`` is about to nudge.
    """
    if isinstance(a, Tensor):
        a = a.numpy()
    elif hasattr(a, "detach"):  # a torch tensor, possibly on a GPU
        a = a.detach().cpu().numpy()
    return np.array(a, dtype=np.float64, copy=True)


def _elementwise_rel_error(a, b):
    a, b = _as_float64(a), _as_float64(b)
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def rel_error(a, b):
    """max over elements of |a − b| / max(1e-8, |a| + |b|) (0 for empty arrays)."""
    errors = _elementwise_rel_error(a, b)
    return float(errors.max()) if errors.size else 0.0


# Centred-difference stencils: pairs (offset k, weight w) and a divisor D, all in units of
# eps:  f'(x) ≈ Σ w·(f(x + k·eps) − f(x − k·eps)) / (D·eps). Each pair is differenced first,
# so an output element that does not depend on x cancels to exactly 0.
# The 5-point formula cancels the eps² error term of the 3-point one, so a large eps (1e-3)
# can be used, which cuts the round-off (≈ 1e-16 / eps) that dominates for small gradients.
STENCILS = {
    3: (((1, 1),), 2),             # (f(x+h) − f(x−h)) / 2h,                             error O(h²)
    5: (((1, 8), (2, -1)), 12),    # (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h,   error O(h⁴)
}


def numerical_gradient(fn, inputs, grad_output, eps=1e-3, points=5):
    """d sum(grad_output * fn(*inputs)) / d input, by centred differences, for each input.

    Returns one float64 NumPy array per input that requires grad (``None`` for the
    others, which are constants). Each element is nudged in place and restored exactly.
    Whole output arrays are differenced before contracting with ``grad_output``, so output
    elements that do not depend on the nudged element cancel exactly instead of adding
    round-off. ``points=3`` gives the textbook formula (use eps ≈ 1e-6 with it).
    """
    pairs, divisor = STENCILS[points]
    grad_output = _as_float64(grad_output)
    grads = []
    with no_grad():
        for t in inputs:
            if not (isinstance(t, Tensor) and t.requires_grad):
                grads.append(None)
                continue
            grad = np.zeros(t.shape)
            for j in np.ndindex(*t.shape):
                original = float(t.data[j])
                try:
                    difference = 0.0
                    for offset, weight in pairs:
                        t.data[j] = original + offset * eps
                        f_plus = _as_float64(fn(*inputs))
                        t.data[j] = original - offset * eps
                        difference = difference + weight * (f_plus - _as_float64(fn(*inputs)))
                finally:
                    t.data[j] = original
                grad[j] = np.sum(difference / (divisor * eps) * grad_output)
            grads.append(grad)
    return grads


@dataclass
class InputReport:
    """How one input fared: its worst element and the two gradients there."""

    position: int  # index of the input in the ``inputs`` list
    shape: tuple
    worst_element: tuple
    analytic: float
    numeric: float
    rel_error: float
    ok: bool
    analytic_grad: np.ndarray
    numeric_grad: np.ndarray

    def explain(self):
        where = (f"input {self.position} (shape {self.shape}), element {self.worst_element}: "
                 f"analytic {self.analytic:.6g} vs numeric {self.numeric:.6g}, "
                 f"rel_error {self.rel_error:.2g}")
        if not np.any(self.analytic_grad) and np.any(self.numeric_grad):
            hint = ("the backward gave this input no gradient at all: is the op recorded "
                    "(requires_grad), and does its backward return a gradient for this input?")
        elif not np.isfinite(self.numeric):   # (the ratio hint read "nan here; a clean ratio like 2 ...")
            hint = ("the finite differences are not finite here: a step of eps left the function's domain "
                    "(log, sqrt or 1/x near 0); take points further from it, or a smaller eps")
        elif abs(self.analytic - self.numeric) <= 1e-4 * abs(self.numeric):
            hint = ("the two agree to 4 digits or more: at a point near a singularity (log, sqrt or 1/x close "
                    "to 0) the finite differences themselves are off (take points further from it, or a smaller "
                    "eps); elsewhere look for a small error, such as a step in float32")
        elif self.numeric != 0 and np.isfinite(self.analytic):
            hint = (f"analytic/numeric = {self.analytic / self.numeric:.4g} here; a clean ratio "
                    "like 2, 0.5 or -1 usually means a missing factor or a sign error, unless the point sits on "
                    "a kink (relu or abs at 0, a tie in max), where the two sides' slopes differ: move it off")
        else:
            hint = "compare the two gradients: look for a wrong index, axis or broadcast"
        return f"{where}\n  -> {hint}"


@dataclass
class GradcheckResult:
    reports: list
    tol: float

    @property
    def ok(self):
        return all(r.ok for r in self.reports)

    @property
    def max_rel_error(self):
        return max((r.rel_error for r in self.reports), default=0.0)

    def __bool__(self):
        return self.ok

    def __str__(self):
        verdict = "passed" if self.ok else "FAILED"
        lines = [f"gradcheck {verdict}: max rel_error {self.max_rel_error:.2e} (tolerance {self.tol:.0e})",
                 f"  {'input':<6}{'shape':<16}{'rel_error':<12}{'worst element':<16}"
                 f"{'analytic':>14}{'numeric':>14}"]
        for r in self.reports:
            flag = "" if r.ok else "  <-- FAIL"
            lines.append(f"  {r.position:<6}{str(r.shape):<16}{r.rel_error:<12.2e}{str(r.worst_element):<16}"
                         f"{r.analytic:>14.6g}{r.numeric:>14.6g}{flag}")
        lines += [r.explain() for r in self.reports if not r.ok]
        return "\n".join(lines)

    __repr__ = __str__  # so a failing ``assert result`` in pytest shows the table


def _report(position, shape, analytic, numeric, tol):
    errors = _elementwise_rel_error(analytic, numeric)
    if errors.size == 0:
        return InputReport(position, tuple(shape), (), 0.0, 0.0, 0.0, True, analytic, numeric)
    worst = tuple(int(k) for k in np.unravel_index(np.argmax(errors), errors.shape))  # a NaN counts as worst
    err = float(errors[worst])
    return InputReport(position, tuple(shape), worst, float(analytic[worst]), float(numeric[worst]), err,
                       err <= tol, analytic, numeric)


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_on_fail=True)``; the message is the result table."""


def _checked_inputs(inputs):
    """The positions of the inputs to check (Tensors that require grad), after making sure
    every floating-point input is float64."""
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.dtype.startswith("float") and t.dtype != "float64":
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; finite differences need float64, "
                            f'create the inputs with dtype="float64"')
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    return checked


def _backward_once(fn, inputs, seed):
    """Run ``fn`` on ``inputs`` and back-propagate a seeded random ``grad_output`` (the shape
    of the output) through it; returns that ``grad_output`` as a float64 NumPy array.

    An op that changes an array it was handed is refused by name: a forward that writes into its
    input (the finite differences then measured another function, and the caller's data was
    lost) or a backward that writes into its incoming gradient (which the engine may hand to
    other ops too; the finite differences then used the changed one and blamed a right backward)."""
    before = [_as_float64(t.data) if isinstance(t, Tensor) else None for t in inputs]   # (a copy)
    out = fn(*inputs)
    for i, (t, kept) in enumerate(zip(inputs, before)):
        if kept is not None and not np.array_equal(_as_float64(t.data), kept, equal_nan=True):
            t.data[...] = t.xp.asarray(kept, t.dtype)   # the caller's values back
            raise ValueError(f"gradcheck: fn changed input {i} in place (x[...] = ..., x *= ...); an op must "
                             f"leave its inputs as they are and return a new array")
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a minidl Tensor, got {type(out).__name__}")
    if not np.allclose(_as_float64(fn(*inputs).data), _as_float64(out.data), rtol=1e-10, atol=0, equal_nan=True):
        raise ValueError("gradcheck: fn gave two outputs for the same inputs (dropout in training mode, or another "
                         "random draw); finite differences need the same function every call: call model.eval(), "
                         "or seed the draw inside fn")
    if out.dtype != "float64":
        raise TypeError(f"gradcheck: fn returned a {out.dtype} tensor; every step must stay float64")
    grad_output = np.random.default_rng(seed).standard_normal(out.shape)
    if out.requires_grad:  # otherwise nothing was recorded: the analytic gradient is 0
        handed = out.xp.asarray(grad_output.copy(), "float64")   # (NumPy's asarray would hand over ours)
        out.backward(handed)
        if not np.array_equal(_as_float64(handed), grad_output):
            raise ValueError("gradcheck: a backward changed the gradient it was handed in place (grad *= 2, "
                             "grad[...] = ...); the engine may hand that array to other ops too: return a new "
                             "array (grad = grad * 2)")
    return grad_output


def _analytic_gradients(fn, inputs, checked, seed):
    """(one float64 array per checked input: its backward gradient, the ``grad_output`` used).

    The inputs' ``.grad`` are cleared for the backward and restored afterwards, even when
    ``fn`` fails, so the caller's gradients are left as they were.
    """
    saved_grads = {i: inputs[i].grad for i in checked}
    try:
        for i in checked:
            inputs[i].grad = None
        grad_output = _backward_once(fn, inputs, seed)
        analytic = [np.zeros(inputs[i].shape) if inputs[i].grad is None else _as_float64(inputs[i].grad)
                    for i in checked]
    finally:
        for i, g in saved_grads.items():
            inputs[i].grad = g
    return analytic, grad_output


def gradcheck(fn, inputs, eps=1e-3, tol=1e-7, seed=0, raise_on_fail=False, points=5):
    """Check the analytic gradient of ``fn(*inputs)`` against finite differences.

    ``inputs``: Tensors; those with ``requires_grad=True`` are checked, the others are
    constants (integer targets, masks). Floating-point inputs must be float64.
    Returns a ``GradcheckResult`` (``.ok``, ``.max_rel_error``, one report per checked
    input); with ``raise_on_fail=True`` a failure raises ``GradcheckError`` instead.
    Existing ``.grad`` values of the inputs are left as they were.
    """
    if isinstance(inputs, Tensor):   # it iterated over the tensor's rows: "takes 1 argument but 2 were given"
        raise TypeError("gradcheck: inputs is the list of fn's arguments; for one tensor x give [x]")
    if points not in STENCILS or not eps > 0 or not tol >= 0:   # a KeyError, or nan errors, or every check failed
        raise ValueError(f"gradcheck: points must be 3 or 5, eps > 0 and tol >= 0; got points={points!r}, "
                         f"eps={eps!r}, tol={tol!r}")
    # an input made by an op (x.double(), x.to("torch"), w * 2) keeps no .grad: a right backward read "no gradient
    # at all"; it is checked as the leaf of its values (sharing them: the finite differences restore each entry)
    inputs = [t.detach().requires_grad_() if isinstance(t, Tensor) and t.requires_grad and not t.is_leaf else t
              for t in inputs]
    checked = _checked_inputs(inputs)
    analytic, grad_output = _analytic_gradients(fn, inputs, checked, seed)
    numeric = [g for g in numerical_gradient(fn, inputs, grad_output, eps, points) if g is not None]
    reports = [_report(i, inputs[i].shape, a, n, tol) for i, a, n in zip(checked, analytic, numeric)]
    result = GradcheckResult(reports, tol)
    if raise_on_fail and not result.ok:
        raise GradcheckError(str(result))
    return result

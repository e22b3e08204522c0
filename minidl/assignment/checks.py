"""What grading tests are written with: fixed inputs, reference values, and checks that fail in plain words.

    from minidl.assignment.checks import check_close, check_gradients, expected, fixed, tensor

    x = tensor(fixed((2, 5), seed=1, scale=2.0))
    check_gradients("Sigmoid.backward", lambda x: ops.sigmoid(x), {"x": x})
    # -> AssertionError: Sigmoid.backward: dL/dx[1, 3] expected 0.1966, got 0.3932 (input x of shape
    #    (2, 5), float64); got/expected = 2: a missing or extra factor?

* ``fixed`` makes inputs from a formula, not a random generator, so they are the same on
  every machine and NumPy version: the reference values in ``grading/expected.json`` (written
  by ``minidl assignment expected NAME`` from the reference code) stay valid.
* ``check_gradients`` runs ``minidl.gradcheck`` in float64 (the backward against centred
  finite differences of the forward) and names the first input and element that disagree.
* ``check_close`` compares a forward result with its reference value element by element.
* ``check_backends`` runs the same function on NumPy and on PyTorch arrays: code written with
  ``np.`` instead of the backend namespace ``xp`` passes on one and fails on the other.

When ``minidl grade`` runs the tests it sets ``MINIDL_GRADE_ROOT`` to the folder it grades;
importing this module then checks that the ``minidl`` being tested really comes from there.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import minidl as md
from minidl.gradcheck import gradcheck

GRADE_ROOT = "MINIDL_GRADE_ROOT"
EXPECTED = "expected.json"


def _check_graded_copy():
    root = os.environ.get(GRADE_ROOT)
    package = Path(md.__file__).resolve().parent
    if root and Path(root).resolve() not in package.parents:
        raise RuntimeError(f"grading the wrong code: minidl was imported from {package}, not from the folder being "
                           f"graded, {root}; run the tests with `minidl grade {root}`")


_check_graded_copy()


def fixed(shape, seed=0, scale=1.0):
    """Deterministic float64 values, uniform-looking on [-scale, scale): SplitMix64 of the element's index
    (integer arithmetic, so every machine and NumPy version gives the same bits, unlike a random generator
    whose stream may change, or a formula through sin whose last bit depends on the C library)."""
    n = int(np.prod(shape, dtype=np.int64))
    offset = np.uint64((seed * 0xBF58476D1CE4E5B9) % 2 ** 64)
    z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + offset
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    unit = (z >> np.uint64(11)).astype(np.float64) / 2.0 ** 53  # [0, 1)
    return (scale * (2.0 * unit - 1.0)).reshape(shape)


def tensor(array, requires_grad=True, device="cpu"):
    """A float64 Tensor of ``array`` on ``device`` ("cpu" = NumPy, "torch" = PyTorch on the CPU)."""
    return md.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad, device=device,
                     dtype="float64")


def expected(test_file, case):
    """{name: float64 array}: the reference values of ``case`` in the ``expected.json`` beside ``test_file``."""
    path = Path(test_file).with_name(EXPECTED)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it ships with the grading tests (instructors: minidl "
                                f"assignment expected NAME writes it)")
    cases = json.loads(path.read_text())
    if case not in cases:
        raise KeyError(f"{path} has no case {case!r}; instructors: run minidl assignment expected NAME")
    return {name: np.asarray(values, dtype=np.float64) for name, values in cases[case].items()}


def _numpy(value):
    if isinstance(value, md.Tensor):
        return np.asarray(value.numpy(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _index(position):
    return f"[{', '.join(str(int(i)) for i in position)}]" if len(position) else ""


def check_close(what, got, want, context, rtol=1e-7, atol=1e-9):
    """Raise AssertionError naming the worst element of ``got`` where it differs from ``want``."""
    got, want = _numpy(got), _numpy(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what} has shape {got.shape}, expected {want.shape} ({context})")
    if got.size == 0:
        return
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    excess = np.where(np.isnan(got), np.inf, excess)
    worst = np.unravel_index(int(np.argmax(excess)), got.shape)
    if excess[worst] > 0:
        raise AssertionError(f"{what}{_index(worst)} expected {want[worst]:.6g}, got {got[worst]:.6g} ({context})")


def check_outputs(op, outputs, case_values, context):
    """``check_close`` for each named output of a case against its reference values."""
    for name, want in case_values.items():
        check_close(f"{op}: {name}", outputs[name], want, context)


def describe(inputs):
    """"x_proj (2, 4, 9), h0 (2, 3), float64" for a dict of named inputs."""
    return ", ".join(f"{name} {tuple(np.shape(_numpy(value)))}" for name, value in inputs.items()) + ", float64"


def _hint(report):
    if not np.any(report.analytic_grad) and np.any(report.numeric_grad):
        return "your backward gave this input no gradient at all"
    if report.numeric != 0 and np.isfinite(report.analytic):
        ratio = report.analytic / report.numeric
        for clean in (2.0, 0.5, -1.0, -2.0, -0.5, 3.0, 1 / 3):
            if abs(ratio - clean) < 1e-3 * abs(clean):
                return f"got/expected = {ratio:.4g}: a missing or extra factor, or a sign error?"
    return f"relative error {report.rel_error:.2g}"


def check_gradients(op, fn, inputs, tol=1e-6):
    """Gradient-check ``fn(*inputs.values())`` in float64; on failure name the first input and element whose
    gradient (from the backward) disagrees with centred finite differences of the forward.

    The loss differentiated is L = sum(g * fn(...)) for a fixed random g of fn's output shape."""
    names = list(inputs)
    result = gradcheck(fn, list(inputs.values()), tol=tol)
    for report in result.reports:
        if not report.ok:
            name = names[report.position]
            raise AssertionError(
                f"{op}: dL/d{name}{_index(report.worst_element)} expected {report.numeric:.4g}, got "
                f"{report.analytic:.4g} (input {name} of shape {tuple(report.shape)}, float64); {_hint(report)}\n"
                f"('expected' comes from centred finite differences of the forward, 'got' from the backward, for "
                f"L = sum(g * output) with a fixed random g)")


def check_backends(op, fn, inputs, rtol=1e-9):
    """Run ``fn`` forward and backward on NumPy and on PyTorch (CPU) arrays: outputs and gradients must agree."""
    runs = {}
    for device in ("cpu", "torch"):
        tensors = [tensor(_numpy(value), device=device) for value in inputs.values()]
        out = fn(*tensors)
        g = np.cos(np.arange(out.size()) * 0.9).reshape(out.shape)
        out.backward(out.xp.asarray(g, "float64"))
        runs[device] = (out, [t.grad for t in tensors])
    (want, want_grads), (got, got_grads) = runs["cpu"], runs["torch"]
    context = "on the torch backend; expected: the NumPy backend's value. Use the backend namespace xp, not np."
    check_close(f"{op}: output", got, want, context, rtol=rtol, atol=1e-12)
    for name, g_want, g_got in zip(inputs, want_grads, got_grads):
        if g_got is None or g_want is None:
            raise AssertionError(f"{op}: dL/d{name} is missing on the "
                                 f"{'torch' if g_got is None else 'NumPy'} backend ({context})")
        check_close(f"{op}: dL/d{name}", g_got, g_want, context, rtol=rtol, atol=1e-12)

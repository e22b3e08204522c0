"""What grading tests are written with: fixed inputs, reference values, and checks that fail in plain words.

    from minidl.assignment.checks import check_close, check_gradients, expected, fixed, tensor

    x = tensor(fixed((2, 5), seed=1, scale=2.0))
    check_gradients("Sigmoid.backward", lambda x: ops.sigmoid(x), {"x": x})
    # -> AssertionError: Sigmoid.backward: dL/dx[1, 3] expected 0.1966, got 0.3932 (input x of shape
    #    (2, 5), float64); got/expected = 2: a missing or extra factor?

* ``fixed`` makes inputs from a formula, not a random generator, so they are the same on
  every machine and NumPy version: the reference values (written by ``minidl assignment
  expected NAME`` from the reference code) stay valid.
* ``expected`` reads those reference values. They are the answers, so they never ship with a
  student copy: ``minidl grade`` hands the grading run a copy of the instructor's
  ``grading/expected.json`` through ``MINIDL_GRADE_REFERENCE``, a file outside the graded
  folder. Without one, a check that needs them fails with ``ReferenceMissing`` (the report
  says why), and only the checks that need no reference can pass.
* ``check_gradients`` runs ``minidl.gradcheck`` in float64 (the backward against centred
  finite differences of the forward) and names the first input and element that disagree.
* ``check_close`` compares a forward result with its reference value element by element.
* ``check_backends`` runs the same function on NumPy and on PyTorch arrays, and the torch
  side with tensors that refuse to become NumPy arrays (as CUDA tensors do): code written
  with ``np.`` instead of the backend namespace ``xp`` fails there, not only on a GPU.
* While ``check_gradients`` and ``check_backends`` run, every op's backward is watched: a
  gradient of the wrong shape is named with the input's shape instead of surfacing as
  NumPy's reshape or gufunc error deep in the engine.

When ``minidl grade`` runs the tests it sets ``MINIDL_GRADE_ROOT`` to the folder it grades;
importing this module then checks that the ``minidl`` being tested really comes from there.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

import minidl as md
from minidl.autograd.function import Function
from minidl.gradcheck import gradcheck

from .manifest import EXPECTED, GRADE_ROOT, REFERENCE



class ReferenceMissing(AssertionError):
    """A check that compares with the instructor's reference values, run without them (in a student copy,
    which never holds them): ``minidl grade`` scores it 0 and says so, instead of crashing."""


class NumpyOnTorch(TypeError):
    """A torch tensor turned into a NumPy array inside ``check_backends`` (``np.asarray(t)``, ``np.exp(t)``):
    the code under test used ``np`` where the backend namespace ``xp`` belongs. On a GPU it would fail."""


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


def _reference_file(test_file):
    """The reference values' file: the one ``minidl grade`` passes in ``MINIDL_GRADE_REFERENCE`` (empty: it
    found none), else, for an instructor running pytest on the repository, ``expected.json`` beside the test."""
    if REFERENCE in os.environ:
        return Path(os.environ[REFERENCE]) if os.environ[REFERENCE] else None
    return Path(test_file).with_name(EXPECTED)


@functools.lru_cache(maxsize=4)
def _cases(path):
    return json.loads(Path(path).read_text())


def expected(test_file, case):
    """{name: float64 array}: the reference values of ``case``; raises ReferenceMissing without them."""
    path = _reference_file(test_file)
    if path is None or not path.is_file():
        raise ReferenceMissing(
            f"this check compares with the instructor's reference values (case {case!r}), which a student copy "
            f"does not hold: it can pass only when the copy is graded with them (instructors: minidl grade finds "
            f"them in the repository's assignments/NAME/grading/{EXPECTED}, or pass --reference)")
    cases = _cases(str(path))
    if case not in cases:
        raise KeyError(f"{path} has no case {case!r}; instructors: run minidl assignment expected NAME")
    return {name: np.asarray(values, dtype=np.float64) for name, values in cases[case].items()}


def as_float64(value):
    """``value`` (a Tensor, an array, a number or nested lists) as a float64 NumPy array."""
    return np.asarray(value.numpy() if isinstance(value, md.Tensor) else value, dtype=np.float64)


def _index(position):
    return f"[{', '.join(str(int(i)) for i in position)}]" if len(position) else ""


def check_close(what, got, want, context, rtol=1e-7, atol=1e-9):
    """Raise AssertionError naming the worst element of ``got`` where it differs from ``want``: its index, its
    value and how far off it is (two digits), never ``want``'s values, which are the answers when they are the
    reference values (a student graded with them reads the message)."""
    got, want = as_float64(got), as_float64(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what} has shape {got.shape}, expected {want.shape} ({context})")
    if got.size == 0:
        return
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    excess = np.where(np.isnan(got), np.inf, excess)
    worst = np.unravel_index(int(np.argmax(excess)), got.shape)
    if excess[worst] > 0:
        error = abs(got[worst] - want[worst])
        off = f", off by {error:.2g}" if np.isfinite(error) else ""   # nan: the value says it
        raise AssertionError(f"{what}{_index(worst)} is {got[worst]:.6g}{off}; {int(np.sum(excess > 0))} of "
                             f"{got.size} values differ from the expected ones ({context})")


def check_outputs(op, outputs, case_values, context):
    """``check_close`` for each named output of a case against its reference values."""
    for name, want in case_values.items():
        check_close(f"{op}: {name}", outputs[name], want, context)


def describe(inputs):
    """"x_proj (2, 4, 9), h0 (2, 3), float64" for a dict of named inputs."""
    return ", ".join(f"{name} {tuple(np.shape(as_float64(value)))}" for name, value in inputs.items()) + ", float64"


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
    with watched_backwards():
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
    """Run ``fn`` forward and backward on NumPy and on PyTorch (CPU) arrays: outputs and gradients must agree.
    The torch run refuses any conversion of a torch tensor to NumPy (see ``torch_refuses_numpy``)."""
    runs = {}
    for device in ("cpu", "torch"):
        tensors = [tensor(as_float64(value), device=device) for value in inputs.values()]
        guard = torch_refuses_numpy() if device == "torch" else contextlib.nullcontext()
        try:
            with guard, watched_backwards():
                out = fn(*tensors)
                g = np.cos(np.arange(out.size()) * 0.9).reshape(out.shape)
                out.backward(out.xp.asarray(g, "float64"))
        except NumpyOnTorch as e:
            raise AssertionError(f"{op}: {e}") from None
        runs[device] = (out, [t.grad for t in tensors])
    (want, want_grads), (got, got_grads) = runs["cpu"], runs["torch"]
    context = "on the torch backend; expected: the NumPy backend's value. Use the backend namespace xp, not np."
    check_close(f"{op}: output", got, want, context, rtol=rtol, atol=1e-12)
    for name, g_want, g_got in zip(inputs, want_grads, got_grads):
        if g_got is None or g_want is None:
            raise AssertionError(f"{op}: dL/d{name} is missing on the "
                                 f"{'torch' if g_got is None else 'NumPy'} backend ({context})")
        check_close(f"{op}: dL/d{name}", g_got, g_want, context, rtol=rtol, atol=1e-12)


@contextlib.contextmanager
def torch_refuses_numpy():
    """Inside the block, torch tensors refuse to become NumPy arrays (``np.asarray(t)``, ``np.exp(t)``,
    ``np.where(t, ...)``), as CUDA tensors do, with a NumpyOnTorch error naming the function that tried.
    On the CPU torch converts silently, so code written with ``np.`` instead of ``xp`` would pass here
    and break on a GPU. minidl's own conversions call ``.numpy()``, which still works."""
    import torch

    def refuse(self, *args, **kwargs):
        raise NumpyOnTorch(f"{culprit(sys._getframe(1))} turned a torch tensor into a NumPy array on the torch "
                           f"backend: use ctx.xp (the backend's namespace), not np (np fails on CUDA tensors)")

    original = torch.Tensor.__array__
    torch.Tensor.__array__ = refuse
    try:
        yield
    finally:
        torch.Tensor.__array__ = original


def culprit(frame):
    """"Sigmoid.backward (minidl/autograd/ops/activations.py:40)": the innermost frame, from ``frame``
    outwards, outside NumPy, torch and this module: the code that handed a torch tensor to np."""
    here = Path(__file__).resolve()
    while frame is not None:
        path = Path(frame.f_code.co_filename).resolve()
        if path != here and not {"numpy", "torch"} & set(path.parts):
            code, root = frame.f_code, Path(md.__file__).resolve().parent.parent
            where = path.relative_to(root).as_posix() if root in path.parents else path.name
            return f"{getattr(code, 'co_qualname', code.co_name)} ({where}:{frame.f_lineno})"
        frame = frame.f_back
    return "the code under test"


def _op_classes(base=Function):
    """Every subclass of ``base``, at any depth: the ops."""
    return [cls for sub in base.__subclasses__() for cls in (sub, *_op_classes(sub))]


def _input_names(cls):
    """The names of ``cls.forward``'s inputs after ctx: "a", "b" for MatMul."""
    try:
        parameters = list(inspect.signature(cls.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _shape(value):
    return tuple(getattr(value, "shape", ()))


def _reducible(grad_shape, shape):
    """Whether the engine can sum a gradient of ``grad_shape`` back to ``shape`` (a broadcast input)."""
    try:
        return len(grad_shape) >= len(shape) and tuple(np.broadcast_shapes(shape, grad_shape)) == grad_shape
    except ValueError:
        return False


def _check_gradient_shapes(op, names, ctx, grads):
    """Each returned gradient must have its input's shape (or one the engine sums back to it)."""
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i, parent in enumerate(getattr(ctx, "parents", ())):
        if parent is None or not parent.requires_grad:
            continue
        name = names[i] if i < len(names) else f"input {i + 1}"
        if i >= len(grads):
            raise AssertionError(f"{op}.backward returned {len(grads)} gradient(s) for {len(ctx.parents)} inputs, "
                                 f"none for {name}: return one per input of forward (None where there is none)")
        if grads[i] is None:
            continue
        if not hasattr(grads[i], "shape"):
            raise AssertionError(f"{op}.backward returned a {type(grads[i]).__name__} as dL/d{name}; return an "
                                 f"array of {name}'s shape {tuple(parent.shape)}")
        if not _reducible(_shape(grads[i]), tuple(parent.shape)):
            raise AssertionError(f"{op}.backward returned dL/d{name} of shape {_shape(grads[i])}; {name} has shape "
                                 f"{tuple(parent.shape)}")


_SHAPE_WORDS = re.compile(r"shape|size|dimension|broadcast|operand|mismatch")


def _watch(cls, backward):
    """``backward`` wrapped: its errors and the shapes of its gradients named in the op's terms."""
    names = _input_names(cls)

    def watched(ctx, grad):
        try:
            grads = backward(ctx, grad)
        except (AssertionError, NotImplementedError, NumpyOnTorch):
            raise
        except Exception as e:
            inputs = ", ".join(f"{names[i] if i < len(names) else f'input {i + 1}'} {tuple(p.shape)}"
                               for i, p in enumerate(getattr(ctx, "parents", ())) if p is not None)
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            hint = ": check the shapes of its products" if _SHAPE_WORDS.search(message) else ""
            raise AssertionError(f"{cls.__name__}.backward raised {type(e).__name__}: {message} (dL/dout "
                                 f"{_shape(grad)}; {inputs}){hint}") from e
        _check_gradient_shapes(cls.__name__, names, ctx, grads)
        return grads

    return staticmethod(watched)


@contextlib.contextmanager
def watched_backwards():
    """Inside the block, every op's backward reports a gradient of the wrong shape as "MatMul.backward
    returned dL/da of shape (4, 2); a has shape (3, 4)", and its own errors with the shapes involved,
    rather than as the engine's reshape error or NumPy's gufunc message."""
    patched = [(cls, cls.__dict__["backward"]) for cls in _op_classes() if "backward" in cls.__dict__]
    for cls, original in patched:
        setattr(cls, "backward", _watch(cls, original.__func__ if isinstance(original, staticmethod) else original))
    try:
        yield
    finally:
        for cls, original in reversed(patched):
            setattr(cls, "backward", original)

"""``Function``: one differentiable op, its forward and its hand-written backward side by side.

An op is a subclass with two static methods::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):            # backend arrays in, a backend array out
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):           # dL/d(out) in, one dL/d(input) per input out
            a, b = ctx.saved
            return grad * b, grad * a

``Mul.apply(x, y)`` unwraps the Tensors, runs ``forward`` and, when gradients are
being recorded, remembers ``ctx`` on the output so ``backward`` can be chained later.
Gradients for broadcast inputs may keep the broadcast shape: the engine reduces them
back with one shared helper (``broadcast.unbroadcast``). ``backward`` may return
``None`` for an input that needs no gradient (see ``ctx.needs_input_grad``).
"""
from __future__ import annotations

import re

import numpy as np

from ..backend import FLOAT_DTYPES
from ..errors import MinidlError, OpError, ShapeError
from . import engine
from .tensor import Tensor, get_default_dtype, is_float


class Context:
    """What an op remembers between its forward and its backward."""

    def __init__(self, xp, needs_input_grad):
        self.xp = xp  # the backend namespace of the inputs
        self.needs_input_grad = needs_input_grad  # one bool per positional input; all False when not recording
        self.saved = ()
        self.aux = None  # optional non-differentiable extra output (e.g. attention weights)

    def save_for_backward(self, *arrays):
        self.saved = arrays


def mask_array(mask, like, op):
    """A padding mask (a Tensor or an array) as an array on the device of ``like`` (a Tensor), in its dtype."""
    if isinstance(mask, Tensor) and mask.xp is not like.xp:   # an AttributeError inside the op, before
        raise ValueError(f"{op}: inputs live on different devices ({mask.device} and {like.device}); move them with "
                         f".to(device) first")
    return like.xp.astype(mask.data if isinstance(mask, Tensor) else like.xp.asarray(mask), like.dtype)


# how NumPy's and torch's messages about shapes read ("could not be broadcast together with shapes", "mismatch in
# its core dimension", "must match the size of tensor b", "cannot reshape array of size", "axis 2 is out of bounds")
_SHAPE_WORDS = re.compile(r"shape|broadcast|dimension|\bdim\b|size|axis|out of (bounds|range)|mismatch|must match",
                          re.I)


def _library_error(cls, inputs, error):
    """What the array library's ``error`` in ``cls``'s forward is for the user: a ShapeError naming
    the input shapes, an OpError naming the dtypes where they clash (torch refuses int64 @ float32), else
    an OpError naming both (a student's np.clip(x, lo, hi, 0), dropout of an int tensor: "ShapeError" sent
    them hunting for a shape bug)."""
    tensors = [x for x in inputs if isinstance(x, Tensor)]
    dtypes = sorted({x.dtype for x in tensors})
    if "allocate" in str(error) or "out of memory" in str(error):   # torch's; the CLI says what to do with one
        return MemoryError(f"{cls.op_name()}: {error}")
    if len(dtypes) > 1 and "dtype" in str(error):
        return OpError(f"{cls.op_name()}: {error} (input dtypes: {', '.join(dtypes)}); give the inputs one dtype, "
                       f"e.g. x.float()")
    if _SHAPE_WORDS.search(str(error)):
        return ShapeError(f"{cls.op_name()}: {error} (input shapes: {', '.join(str(tuple(x.shape)) for x in tensors)})")
    return OpError(f"{cls.op_name()}: {error} (inputs: {', '.join(f'{x.dtype} {tuple(x.shape)}' for x in tensors)})")


def _promoted(xp, out, arrays):
    """One promotion rule on both backends: a float output takes the widest float dtype among the
    inputs, or the default dtype when no input is float. NumPy promotes integers to float64
    (int64 + float32, int64 * 0.5, the mean of integers), PyTorch to its default float32."""
    name = xp.dtype_name(out) if hasattr(out, "dtype") else None
    if name not in FLOAT_DTYPES:
        return out
    floats = {xp.dtype_name(a) for a in arrays if hasattr(a, "dtype") and is_float(xp, a)}
    if not floats <= set(FLOAT_DTYPES):   # half precision among the inputs: left as the library gives it
        return out
    want = "float64" if "float64" in floats else "float32" if floats else get_default_dtype()
    return out if name == want else xp.astype(out, want)


def _lifted(xp, inputs, arrays):
    """The raw arrays among an op's inputs on the device of its Tensors and, where they hold floats, in the Tensors'
    float dtype, as an operator lifts them (``Tensor._lift``): x32 @ np.ones((3, 2)) is float32 on both backends
    (NumPy gave float64, torch refused the NumPy array). A NumPy array (ids, targets) may be refilled before backward
    (a reused buffer): copied while recording."""
    floats = {xp.dtype_name(x.data) for x in inputs if isinstance(x, Tensor) and is_float(xp, x.data)}
    float_dtype = "float64" if "float64" in floats else "float32" if "float32" in floats else None
    kinds = (np.ndarray, type(next(x.data for x in inputs if isinstance(x, Tensor))))   # NumPy's, the backend's
    lifted = []
    for x, a in zip(inputs, arrays):
        if isinstance(x, kinds):
            a = xp.array(x) if isinstance(x, np.ndarray) and engine.is_grad_enabled() else xp.asarray(x)
            a = xp.astype(a, float_dtype) if float_dtype and is_float(xp, a) else a
        lifted.append(a)
    return lifted


class Function:
    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - interface
        raise NotImplementedError

    name = None  # the public function's name, where snake-casing the class name does not give it
    sets_dtype = False  # True for an op whose output dtype is its argument (``To``), not its inputs'

    @classmethod
    def op_name(cls):
        """The name of the op's public function: ElmanRNN -> "elman_rnn", MatMul (name) -> "matmul"."""
        return cls.name or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()

    @classmethod
    def _unwrap(cls, inputs, kwargs):
        """(the backend of the Tensor inputs, every input's array, which inputs require grad)."""
        # a Tensor given by keyword would get no gradient: refused (the check costs nothing without keywords)
        if kwargs and (named := [name for name, value in kwargs.items() if isinstance(value, Tensor)]):
            raise OpError(f"{cls.op_name()}: the Tensor {named[0]}= is given by keyword; give Tensor inputs by "
                          f"position (keywords are for settings)")
        xp = None
        arrays, needs, raw = [], [], False
        for x in inputs:
            if isinstance(x, Tensor):
                if xp is None:
                    xp = x.xp
                elif x.xp is not xp:
                    raise ValueError(
                        f"{cls.op_name()}: inputs live on different devices ({x.device} and "
                        f"{Tensor.device_of(xp)}); move them with .to(device) first")
                arrays.append(x.data)
                needs.append(x.requires_grad)
            else:
                raw = raw or hasattr(x, "dtype")   # an array (or a NumPy scalar), lifted below
                arrays.append(x)
                needs.append(False)
        if xp is None:
            raise TypeError(f"{cls.op_name()}: needs at least one minidl Tensor input")
        return xp, (_lifted(xp, inputs, arrays) if raw else arrays), needs

    @classmethod
    def apply(cls, *inputs, **kwargs):
        xp, arrays, needs = cls._unwrap(inputs, kwargs)
        record = engine.is_grad_enabled() and any(needs)
        # not recording (no_grad, or constants only): no backward will run, so the forward may
        # skip what only the backward needs and work in place
        ctx = Context(xp, tuple(needs) if record else (False,) * len(needs))
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        except (MinidlError, NotImplementedError, NameError, AttributeError, KeyError, ZeroDivisionError, MemoryError):
            raise   # the op's own message, an op still to be written, a slip in its code, or memory: not the inputs
        except Exception as e:                        # the array library could not combine the inputs
            raise _library_error(cls, inputs, e) from e
        if out is None or isinstance(out, (tuple, list, Tensor)):   # NumPy stacked a tuple into one array, silently
            what = ("None" if out is None else "a minidl Tensor" if isinstance(out, Tensor)
                    else "a " + type(out).__name__)
            raise OpError(f"{cls.op_name()}: forward returned {what}; return the output array (keep what else the "
                          f"backward needs with ctx.save_for_backward)")
        if getattr(out, "dtype", None) is not getattr(arrays[0], "dtype", None) and not cls.sets_dtype:
            out = _promoted(xp, out, arrays)
        # An op may hand its output to another backend (only ``To`` does: ctx.out_xp).
        out_xp = getattr(ctx, "out_xp", xp)
        if record and cls.sets_dtype:   # (only such an op turns float inputs into integers: x.to(dtype="int64"))
            record = is_float(out_xp, out)   # integers carry no gradient, as in torch
        result = Tensor._wrap(out, out_xp, requires_grad=record)
        if ctx.aux is not None:
            result.aux = ctx.aux
        if record:
            ctx.fn = cls
            ctx.clock = engine._clock
            ctx.parents = tuple(x if isinstance(x, Tensor) else None for x in inputs)
            if engine.anomaly_mode():
                ctx.created_at = engine.user_frame()
            result._ctx = ctx
        return result

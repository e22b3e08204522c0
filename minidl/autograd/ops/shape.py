"""Ops that move values around without changing them; their backward moves the gradient back.

reshape / transpose undo themselves; broadcast_to sums over the copies (the engine's
shared ``unbroadcast``); getitem scatters the gradient into a zero array, adding where an
index repeats; concat / stack / pad slice the gradient apart again; ``to`` carries it
back to the source device and dtype.
"""
from __future__ import annotations

import numpy as np

from ...backend import normalise_axis
from ..function import Function, OpError, ShapeError
from ..tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Transpose(Function):
    @staticmethod
    def forward(ctx, x, axes):
        axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {tuple(x.shape)}")
        ctx.axes = axes
        return ctx.xp.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = tuple(ctx.axes.index(a) for a in range(len(ctx.axes)))  # the output position of each input axis
        return ctx.xp.transpose(grad, inverse), None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return ctx.xp.broadcast_to(x, tuple(shape))

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine sums it back to x's shape


class GetItem(Function):
    name = "getitem"

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, ctx.xp.dtype_name(x), index
        if isinstance(index, FlatPositions):
            return x.reshape(-1)[index.positions]
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        out = xp.zeros(ctx.shape, ctx.dtype)
        if isinstance(ctx.index, FlatPositions):
            xp.index_add(out.reshape(-1), ctx.index.positions, grad)
        elif _is_advanced(ctx.index):
            xp.index_add(out, ctx.index, grad)  # a repeated index receives the sum of its gradients
        else:
            out[ctx.index] = grad  # basic slicing never repeats an element
        return out, None


class FlatPositions:
    """An index given as positions in the flattened array, computed with NumPy's rules.

    torch refuses negative slice steps (``x[::-1]``); NumPy applies the index to
    ``arange(size)`` instead, and torch gathers those positions.
    """

    def __init__(self, xp, shape, index):
        def to_numpy(p):
            p = p.data if isinstance(p, Tensor) else p
            return p.detach().cpu().numpy() if hasattr(p, "detach") else p

        index = tuple(map(to_numpy, index)) if isinstance(index, tuple) else to_numpy(index)
        self.positions = xp.index_array(np.arange(int(np.prod(shape))).reshape(shape)[index])


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(not (p is None or p is Ellipsis or isinstance(p, (int, slice))) for p in parts)


def _prepare_index(xp, index):
    """Tensors and lists inside an index become backend index arrays."""
    def convert(p):
        if isinstance(p, Tensor):
            p = p.data
        if p is None or p is Ellipsis or isinstance(p, (int, slice)):
            return p
        if hasattr(p, "__index__") and not hasattr(p, "shape"):
            return int(p)  # NumPy integer scalars
        return xp.index_array(p)

    if isinstance(index, tuple):
        return tuple(convert(p) for p in index)
    return convert(index)


class Concat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        first = arrays[0]
        axis = normalise_axis(axis, first.ndim)[0]   # (axis % ndim joined a 2-D pair along axis 0 for axis=2)
        for a in arrays[1:]:
            if a.ndim != first.ndim or any(n != m for i, (n, m) in enumerate(zip(a.shape, first.shape)) if i != axis):
                shapes = ", ".join(str(tuple(x.shape)) for x in arrays)
                raise ShapeError(f"concat: shapes {shapes} must agree except along axis {axis}")
        ctx.axis, ctx.sizes = axis, [a.shape[axis] for a in arrays]
        return ctx.xp.concat(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        grads, start = [], 0
        for n in ctx.sizes:
            grads.append(grad[(slice(None),) * ctx.axis + (slice(start, start + n),)])
            start += n
        return tuple(grads)


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) > 1:
            raise ShapeError(f"stack: all inputs need the same shape, got {', '.join(str(s) for s in sorted(shapes))}")
        ctx.axis = normalise_axis(axis, arrays[0].ndim + 1)[0]
        ctx.count = len(arrays)
        return ctx.xp.stack(arrays, axis=ctx.axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(grad[(slice(None),) * ctx.axis + (i,)] for i in range(ctx.count))


class Pad(Function):
    """Constant padding; ``pad_width`` has one (before, after) pair per axis."""

    @staticmethod
    def forward(ctx, x, pad_width, value):
        pad_width = tuple((int(b), int(a)) for b, a in pad_width)
        if len(pad_width) != x.ndim:
            raise ShapeError(f"pad: pad_width has {len(pad_width)} (before, after) pairs but the input "
                             f"{tuple(x.shape)} has {x.ndim} axes")
        if any(n < 0 for pair in pad_width for n in pair):   # torch's pad crops there, and backward then failed
            raise OpError(f"pad: pad_width {pad_width} has a negative width; widths are >= 0 (crop by slicing, "
                          f"e.g. x[1:])")
        ctx.crop = tuple(slice(b, b + n) for (b, _), n in zip(pad_width, x.shape))
        return ctx.xp.pad(x, pad_width, value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.crop], None, None


class To(Function):
    """Copy to another backend/device and/or dtype; the gradient goes back the same way."""

    sets_dtype = True

    @staticmethod
    def forward(ctx, x, xp, dtype):
        ctx.out_xp, ctx.source_dtype = xp, ctx.xp.dtype_name(x)
        return xp.asarray(x, dtype)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.asarray(grad, ctx.source_dtype), None, None


def reshape(x, shape):
    return Reshape.apply(x, tuple(shape))


def transpose(x, axes=None):
    return Transpose.apply(x, None if axes is None else tuple(axes))


permute = transpose


def broadcast_to(x, shape):
    return BroadcastTo.apply(x, tuple(shape))


def getitem(x, index):
    if not x.xp.negative_step_slices and _has_negative_step(index):
        return GetItem.apply(x, FlatPositions(x.xp, x.shape, index))
    return GetItem.apply(x, _prepare_index(x.xp, index))


def _has_negative_step(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, slice) and p.step is not None and p.step < 0 for p in parts)


def _listed(op, tensors):
    """A bare Tensor would be unpacked into its rows (concat(x) put x's rows end to end, silently)."""
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: takes a list or tuple of tensors, got one Tensor; e.g. md.{op}([a, b])")
    return tensors


def concat(tensors, axis=0):
    return Concat.apply(*_listed("concat", tensors), axis=axis)


def stack(tensors, axis=0):
    return Stack.apply(*_listed("stack", tensors), axis=axis)


def pad(x, pad_width, value=0.0):
    return Pad.apply(x, pad_width, value)

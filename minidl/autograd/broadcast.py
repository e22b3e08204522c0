"""Broadcasting: the shape check every binary op shares, and the one gradient reduction.

If ``out = a + b`` broadcast ``a`` from shape ``(E,)`` to ``(B, T, E)``, every copy of
``a`` received a gradient, so dL/da is the sum of dL/d(out) over the broadcast axes.
The engine calls ``unbroadcast`` for any input whose gradient came back with a
different shape, so no op has to repeat this.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def broadcast_shape(op, *shapes):
    """The common shape of ``shapes``, or a ShapeError naming ``op`` and the shapes."""
    try:
        return np.broadcast_shapes(*(tuple(s) for s in shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeError(f"{op}: shapes {listed} cannot be broadcast together "
                         f"(trailing dimensions must match or be 1)") from None


def unbroadcast(xp, grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    shape = tuple(shape)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = xp.sum(grad, axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = xp.sum(grad, axis=stretched, keepdims=True)
    return grad.reshape(shape)

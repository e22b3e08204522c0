"""Creating tensors: from data, filled with a constant, or random (seeded by ``manual_seed``)."""
from __future__ import annotations

from .autograd.tensor import Tensor, get_default_dtype
from .backend import get_backend


def tensor(data, requires_grad=False, device=None, dtype=None):
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        raise TypeError("md.tensor of a list of Tensors would cut them from the graph: md.stack(tensors) joins them "
                        "(a new axis), md.concat(tensors) along an axis")
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def _make(fill, shape, device, dtype, requires_grad):
    xp = get_backend(device)
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    return Tensor._wrap(fill(xp, shape, dtype or get_default_dtype()), xp).requires_grad_(requires_grad)


def zeros(*shape, device=None, dtype=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.zeros(s, d), shape, device, dtype, requires_grad)


def ones(*shape, device=None, dtype=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.ones(s, d), shape, device, dtype, requires_grad)


def zeros_like(t, requires_grad=False):
    return Tensor._wrap(t.xp.zeros_like(t.data), t.xp).requires_grad_(requires_grad)


def rand(*shape, device=None, dtype=None, requires_grad=False, generator=None):
    """Uniform on [0, 1)."""
    return _make(lambda xp, s, d: xp.rand(s, d, generator), shape, device, dtype, requires_grad)


def randn(*shape, device=None, dtype=None, requires_grad=False, generator=None):
    """Standard normal."""
    return _make(lambda xp, s, d: xp.randn(s, d, generator), shape, device, dtype, requires_grad)


def arange(n, *, device=None, dtype="int64"):
    """0, 1, ..., n - 1 (one count, not NumPy's start, stop, step: md.arange(0, 1, 0.25) read 1
    as the device)."""
    xp = get_backend(device)
    return Tensor._wrap(xp.arange(n, dtype), xp)

"""Initial values for parameters, drawn from the backend's seeded generator
(``minidl.manual_seed(s)`` makes them reproducible).

Each returns a new ``Parameter`` of the given shape on ``device`` (default "cpu") in
``dtype`` (default: the default dtype, float32).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import creation
from .module import Parameter


def uniform(shape, bound, device=None, dtype=None):
    """U(−bound, bound). Linear uses bound = 1/√D_in, which keeps the output's variance
    close to the input's (PyTorch's default for nn.Linear)."""
    u = creation.rand(*shape, device=device, dtype=dtype)
    return Parameter(u * (2.0 * bound) - bound)


def normal(shape, std=1.0, device=None, dtype=None):
    """N(0, std²)."""
    return Parameter(creation.randn(*shape, device=device, dtype=dtype) * std)


def zeros(shape, device=None, dtype=None):
    return Parameter(creation.zeros(*shape, device=device, dtype=dtype))


def ones(shape, device=None, dtype=None):
    return Parameter(creation.ones(*shape, device=device, dtype=dtype))


def identity(size, device=None, dtype=None):
    """The (size, size) identity matrix."""
    return Parameter(np.eye(size), device=device, dtype=dtype)


def check_sizes(layer, **sizes):
    """Refuse sizes that are not whole numbers >= 1, in one line naming them (a GRU of hidden size 0 was a
    ZeroDivisionError, a float size a TypeError deep in NumPy)."""
    if not all(isinstance(n, numbers.Integral) and n >= 1 for n in sizes.values()):
        hint = " (hidden / 2 is a float; hidden // 2 is not)" if float in map(type, sizes.values()) else ""
        listed = ", ".join(f"{name}={n!r}" for name, n in sizes.items())
        raise ValueError(f"{layer} needs whole-number sizes >= 1, got {listed}{hint}")

"""Helpers for the theory checks: minidl's gradients as float64 NumPy arrays."""
import numpy as np
import pytest

import minidl as md


@pytest.fixture
def minidl_grad(device):
    """``minidl_grad(fn, *arrays) -> (value, [d sum(fn)/d array, ...])``, on ``device``, float64.

    Every array becomes a float64 tensor that requires grad; ``fn`` builds the
    computation from minidl ops; the sum of its output is back-propagated by minidl's
    engine. Elementwise ``fn`` therefore gives the derivative at every element at once.
    """
    def compute(fn, *arrays):
        inputs = [md.tensor(np.asarray(a, dtype=np.float64), requires_grad=True, device=device, dtype="float64")
                  for a in arrays]
        out = fn(*inputs)
        out.sum().backward()
        return out.numpy().astype(np.float64), [t.xp.to_numpy(t.grad).astype(np.float64) for t in inputs]

    return compute

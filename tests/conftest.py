"""Shared fixtures: every backend test runs on NumPy and on PyTorch-CPU (and CUDA if present)."""
import os
import sys

import numpy as np
import pytest

DEVICES = ["cpu", "torch"]
try:
    import torch

    if torch.cuda.is_available():
        DEVICES.append("cuda")
except ImportError:  # pragma: no cover - torch is a declared dependency
    DEVICES = ["cpu"]

# Without a GPU, tests/kernels runs the Triton kernels in Triton's CPU interpreter. triton.jit
# reads TRITON_INTERPRET when a kernel is defined, so it must be set before minidl.kernels'
# Triton modules are imported; this conftest loads first in every process (xdist workers too).
if "triton" not in sys.modules and "cuda" not in DEVICES:
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(params=DEVICES)
def device(request):
    """A minidl device string: "cpu" (NumPy), "torch" (PyTorch CPU), "cuda" when a GPU exists."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)

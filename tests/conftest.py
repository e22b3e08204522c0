"""Shared fixtures: every backend test runs on NumPy and on PyTorch-CPU (and CUDA if present)."""
import numpy as np
import pytest

DEVICES = ["cpu", "torch"]
try:
    import torch

    if torch.cuda.is_available():
        DEVICES.append("cuda")
except ImportError:  # pragma: no cover - torch is a declared dependency
    DEVICES = ["cpu"]


@pytest.fixture(params=DEVICES)
def device(request):
    """A minidl device string: "cpu" (NumPy), "torch" (PyTorch CPU), "cuda" when a GPU exists."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)

"""The Triton kernels against their reference paths. Without a GPU they run in Triton's CPU
interpreter: the root conftest sets TRITON_INTERPRET=1 before anything imports Triton."""
import pytest
import torch

from minidl import kernels


@pytest.fixture(autouse=True)
def _triton_and_a_clean_mode():
    """Skip without Triton; every test starts and ends in the default "auto" mode."""
    if not kernels.triton_available():
        pytest.skip('Triton is not installed (pip install "triton>=3.0", part of minidl[dev]): '
                    "the kernels cannot be checked")
    kernels.set_mode("auto")
    yield
    kernels.set_mode("auto")


@pytest.fixture
def kernel_device():
    """Where the kernels run: a GPU if there is one, else torch CPU tensors under the interpreter."""
    return "cuda" if torch.cuda.is_available() else "torch"

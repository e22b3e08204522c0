"""The switch between a fused op's Triton kernel and its reference path.

    kernels.set_mode("reference")          # every fused op takes its reference path
    with kernels.mode("triton"):           # force the kernels, e.g. to compare the two
        ...

Modes:

* ``"auto"`` (default): torch CUDA tensors of float32/float64 use the kernel when Triton imports;
  everything else (NumPy arrays, torch CPU tensors, float16) takes the reference path.
* ``"triton"``: every torch tensor uses the kernel. On CPU tensors that only works in
  Triton's interpreter, which is on when ``TRITON_INTERPRET=1`` was in the environment
  before the kernels were defined, i.e. before the first kernel ran (the tests set it before
  anything imports Triton); otherwise it is an error.
* ``"reference"``: the reference path everywhere.

NumPy arrays never use a kernel. Triton is imported lazily, on the first question about a
torch tensor, so ``import minidl`` works without it.
"""
from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager

MODES = ("auto", "triton", "reference")
_mode = "auto"


def set_mode(name):
    """Choose "auto", "triton" or "reference" for every fused op from now on."""
    global _mode
    if name not in MODES:
        raise ValueError(f'kernels.set_mode: mode must be one of {", ".join(MODES)}; got {name!r}')
    _mode = name


def get_mode():
    return _mode


@contextmanager
def mode(name):
    """``with kernels.mode("reference"): ...`` -- the mode inside the block, the old one after it."""
    previous = _mode
    set_mode(name)
    try:
        yield
    finally:
        set_mode(previous)


@functools.cache
def triton_available():
    """Does ``import triton`` work? (Asked once.)"""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting():
    """Are our kernels run by Triton's CPU interpreter? ``triton.jit`` decides when a kernel is
    defined, from ``TRITON_INTERPRET`` as it was then, so this asks a kernel of ours."""
    if not triton_available():
        return False
    from triton.runtime.interpreter import InterpretedFunction

    from .losses import cross_entropy_kernel

    return isinstance(cross_entropy_kernel, InterpretedFunction)


def use_kernel(array):
    """Should a fused op whose main input is ``array`` run its Triton kernel?"""
    torch = sys.modules.get("torch")  # a torch tensor implies torch was imported
    if _mode == "reference" or torch is None or not isinstance(array, torch.Tensor):
        return False
    floats = array.dtype in (torch.float32, torch.float64)   # the kernels are written for these two
    if _mode == "auto":
        return floats and array.is_cuda and triton_available()
    if not floats:
        raise TypeError(f'kernels.mode("triton"): the Triton kernels take float32 or float64, got {array.dtype}; '
                        'convert with .float() or use kernels.mode("auto") for the reference path')
    if not triton_available():
        raise RuntimeError('kernels.mode("triton") needs Triton: pip install "triton>=3.0" (or minidl[gpu])')
    check_launchable(array, 'kernels.mode("triton")')
    return True


def check_launchable(array, who="minidl's Triton kernels"):
    """Refuse, in one line, a launch Triton cannot run: a CPU tensor outside its interpreter
    (Triton's own error is "0 active drivers")."""
    if not array.is_cuda and not interpreting():
        raise RuntimeError(
            f"{who}: CPU tensors need Triton's interpreter: set TRITON_INTERPRET=1 in the environment before "
            "triton is imported and before any kernel runs (the kernels were defined with TRITON_INTERPRET unset; "
            f"now it is {os.environ.get('TRITON_INTERPRET')!r}), or give CUDA tensors")

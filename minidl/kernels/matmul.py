"""The matrix product inside a kernel, a (M, K) @ b (K, N) on register tiles, at a precision
chosen per launch (a constexpr, so each precision is its own compiled kernel):

    "ieee"      tl.dot in full float32, no TF32: the results match the reference path to
                float32 round-off; on a GPU every block dimension must be ≥ 16
    "tf32"      tl.dot on tensor cores with TF32 inputs (10-bit mantissa, about 1e-3 relative
                error): what PyTorch's own float32 products use after
                ``torch.set_float32_matmul_precision("high")``, and cuDNN's RNNs by default
    "float64"   a broadcast product summed over K: any dtype, exact, but it keeps an (M, K, N)
                tile, so its blocks stay small (gradient checks, not speed)

``precision(dtype)`` picks one for a launch: float64 arrays get "float64"; float32 follows
PyTorch's switch, ``torch.get_float32_matmul_precision()``: "highest" (PyTorch's default)
gives "ieee", "high" or "medium" gives "tf32". The reference path's torch products on a GPU
obey the same switch, so both paths always compute at the same precision.

Why it matters: compiled for an H100 (``python -m minidl.kernels.compile_check``), an "ieee"
tl.dot is plain fused multiply-adds on register tiles, and the recurrent kernels at H = 128
and the attention kernels spill kilobytes of registers per thread; in "tf32" they run on
tensor cores without spilling. Triton's interpreter ignores the precision: on the CPU both
compute in float32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


def precision(dtype):
    """The precision of the products in a launch on arrays of ``dtype`` (see the module docstring)."""
    if dtype == torch.float64:
        return "float64"
    return "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"


@triton.jit
def matmul(a, b, PRECISION: tl.constexpr):
    """a (M, K) @ b (K, N)."""
    if PRECISION == "float64":  # an if/else, not an early return: Triton would compile what follows it too
        product = tl.sum(a[:, :, None] * b[None, :, :], axis=1)
    else:
        product = tl.dot(a, b, input_precision=PRECISION)
    return product

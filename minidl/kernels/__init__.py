"""Triton kernels: the fast path of minidl's fused ops on CUDA tensors, forward and backward.

Each kernel computes what the reference path of its fused ``Function`` computes, from the
same equations. The Function's forward asks ``use_kernel`` which path to take (``dispatch``
explains the modes) and records the answer in ``ctx.kernel``; its backward follows it.

    recurrent.py          Elman RNN and GRU over a whole sequence (persistent: the time
                          loop runs inside the kernel), backward through time in reverse
    window_attention.py   windowed self-attention in O(T·r·d), never a T×T matrix
    attention.py          the transformer's scaled dot-product attention, FlashAttention's
                          tiling: O(T·d) memory, never a T×T matrix
    losses.py             softmax cross-entropy and the distillation loss, one pass over
                          the logits that writes the loss and the gradient
    matmul.py             the products inside the kernels: full float32, TF32 (after
                          torch.set_float32_matmul_precision("high")) or float64
    compile_check.py      compiles every kernel for sm_90 / sm_80 without a GPU: registers,
                          spills, shared memory (python -m minidl.kernels.compile_check)

The kernels launch on torch tensors: CUDA ones on a GPU, CPU ones under Triton's
interpreter (``TRITON_INTERPRET=1``), which is how the tests check them without a GPU.
Triton itself is imported only when a kernel is first used.
"""
from __future__ import annotations

import importlib

from .dispatch import MODES, get_mode, interpreting, mode, set_mode, triton_available, use_kernel

_KERNEL_FUNCTIONS = {
    "elman_rnn_forward": "recurrent", "elman_rnn_backward": "recurrent",
    "gru_forward": "recurrent", "gru_backward": "recurrent",
    "window_attention_forward": "window_attention", "window_attention_backward": "window_attention",
    "attention_forward": "attention", "attention_backward": "attention",
    "cross_entropy_forward": "losses", "distillation_forward": "losses",
}


def __getattr__(name):
    """``kernels.gru_forward`` etc. import their Triton module on first use (PEP 562)."""
    if name in _KERNEL_FUNCTIONS:
        return getattr(importlib.import_module(f".{_KERNEL_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MODES", "get_mode", "interpreting", "mode", "set_mode", "triton_available", "use_kernel",
           *_KERNEL_FUNCTIONS]

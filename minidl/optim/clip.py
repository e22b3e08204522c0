"""Gradient clipping by global norm: keeps one bad batch from throwing the weights far away
(exploding gradients in RNNs)."""
from __future__ import annotations

import math

from ..autograd.tensor import Tensor


def clip_grad_norm_(parameters, max_norm, eps=1e-6):
    """Scale all gradients together so their global L2 norm ‖(g_1, ..., g_n)‖ is at most
    ``max_norm``; the direction is unchanged. Returns the norm *before* clipping (a
    float), worth logging. Parameters without a gradient are ignored.

    Each ``p.grad`` is replaced by a new array, never scaled in place: the engine may
    share one gradient array between two tensors. ``eps`` guards the division, as in
    ``torch.nn.utils.clip_grad_norm_``.
    """
    if not max_norm > 0:   # 0 zeroes every gradient, a negative norm turns them round
        raise ValueError(f"clip_grad_norm_: max_norm must be > 0, got {max_norm}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    with_grad = [p for p in parameters if p.grad is not None]
    total_norm = math.sqrt(sum(float(p.xp.sum(p.grad * p.grad)) for p in with_grad))
    scale = max_norm / (total_norm + eps)
    if scale < 1.0:
        for p in with_grad:
            p.grad = p.grad * scale
    return total_norm

"""Restricted (windowed) self-attention as ONE graph node, in O(T·w·d) time and memory.

Each word i attends only to the words j with |i − j| ≤ r (the radius; the window has
w = 2r + 1 slots, k = 0..2r standing for j = i + k − r):

    s[b, i, k] = q[b, i] · k_vec[b, i+k−r] / √d      (slots outside 0..T−1 or on padding: −∞)
    a[b, i, :] = softmax_k s[b, i, :]
    out[b, i]  = Σ_k a[b, i, k] · v[b, i+k−r]

Shapes: q, k, v (B, T, d); mask (B, T) with 1 for real words; out (B, T, d); the
attention weights a (B, T, w) are returned too (for explanations), as a constant.
A T×T score matrix is never formed. Padding rows get a = 0 and out = 0.

Backward, with g = dL/dout:
    dL/da[b,i,k]   = g[b,i] · v[b,i+k−r]
    dL/dv[b,j]    += a[b,i,k] · g[b,i]                 for every (i, k) with i+k−r = j
    dL/ds          = a ⊙ (dL/da − Σ_k a ⊙ dL/da)       (softmax backward)
    dL/dq[b,i]     = Σ_k dL/ds[b,i,k] · k_vec[b,i+k−r] / √d
    dL/dk_vec[b,j] += dL/ds[b,i,k] · q[b,i] / √d
The scatter into v and k loops over the w window offsets, adding shifted slices.
On CUDA tensors a Triton kernel (``minidl.kernels``) computes the same without ever
materialising the (B, T, w, d) windows.
"""
from __future__ import annotations

import math

from ... import kernels
from ..function import Function, OpError, ShapeError
from .reductions import softmax_backward_array


def _windows(xp, x, r):
    """(B, T, d) -> (B, T, w, d): slot k of row i holds x[:, i+k−r] (zeros outside 0..T−1)."""
    T = x.shape[1]
    padded = xp.pad(x, ((0, 0), (r, r), (0, 0)))
    return xp.stack([padded[:, k:k + T] for k in range(2 * r + 1)], axis=2)


def _scatter_windows(xp, windows, r):
    """The adjoint of ``_windows``: (B, T, w, d) -> (B, T, d), summing every slot into its word."""
    B, T, w, d = windows.shape
    padded = xp.zeros((B, T + 2 * r, d), xp.dtype_name(windows))
    for k in range(w):
        padded[:, k:k + T] += windows[:, :, k]
    return padded[:, r:r + T]


def window_valid(xp, mask, r):
    """(B, T, w) booleans: slot k of word i is a real word inside the sequence, and i is real."""
    key_real = _windows(xp, mask[..., None], r)[..., 0] > 0
    return key_real & (mask[..., None] > 0)


class WindowAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, radius):
        xp = ctx.xp
        if not (q.shape == k.shape == v.shape) or q.ndim != 3 or tuple(mask.shape) != tuple(q.shape[:2]):
            raise ShapeError(f"window_attention: expected q, k, v (B, T, d) and mask (B, T); got q {tuple(q.shape)}, "
                             f"k {tuple(k.shape)}, v {tuple(v.shape)}, mask {tuple(mask.shape)}")
        if radius < 0:
            raise OpError(f"window_attention: radius must be >= 0, got {radius}")
        ctx.kernel = kernels.use_kernel(q)
        if ctx.kernel:
            out, weights = kernels.window_attention_forward(q, k, v, mask, radius)
            ctx.save_for_backward(q, k, v, weights)
            ctx.radius, ctx.aux = radius, weights
            return out
        scale = 1.0 / math.sqrt(q.shape[-1])
        k_win, v_win = _windows(xp, k, radius), _windows(xp, v, radius)      # (B, T, w, d)
        valid = window_valid(xp, mask, radius)                               # (B, T, w)
        scores = xp.sum(q[:, :, None, :] * k_win, axis=-1) * scale           # (B, T, w)
        scores = xp.where(valid, scores, -1e30)
        weights = xp.exp(scores - xp.max(scores, axis=-1, keepdims=True)) * valid
        total = xp.sum(weights, axis=-1, keepdims=True)
        weights = weights / xp.where(total > 0, total, 1.0)                 # padding rows: all zero
        ctx.save_for_backward(q, k_win, v_win, weights)
        ctx.radius, ctx.scale = radius, scale
        ctx.aux = weights  # reported to the caller for explanations (no gradient flows through it)
        return xp.sum(weights[..., None] * v_win, axis=2)

    @staticmethod
    def backward(ctx, grad):
        if ctx.kernel:
            return (*kernels.window_attention_backward(grad, *ctx.saved, ctx.radius), None, None)
        xp = ctx.xp
        q, k_win, v_win, a = ctx.saved
        r, scale = ctx.radius, ctx.scale
        d_a = xp.sum(grad[:, :, None, :] * v_win, axis=-1)                  # (B, T, w)
        d_v = _scatter_windows(xp, a[..., None] * grad[:, :, None, :], r)
        d_s = softmax_backward_array(xp, a, d_a)                               # (B, T, w)
        d_q = xp.sum(d_s[..., None] * k_win, axis=2) * scale
        d_k = _scatter_windows(xp, d_s[..., None] * q[:, :, None, :], r) * scale
        return d_q, d_k, d_v, None, None


def window_attention(q, k, v, mask, radius=5):
    """(output (B, T, d), attention weights (B, T, 2r+1) as a constant Tensor); see the module docstring."""
    from ..tensor import Tensor

    mask = mask.data if isinstance(mask, Tensor) else q.xp.asarray(mask)
    out = WindowAttention.apply(q, k, v, q.xp.astype(mask, q.dtype), radius)
    return out, Tensor._wrap(out.aux, q.xp)

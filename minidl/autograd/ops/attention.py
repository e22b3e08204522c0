"""Scaled dot-product attention (the transformer's) as ONE graph node.

    s[b, :, i, j] = q_i · k_j / √d,   replaced by MASKED_SCORE (−1e9) where key j is padding
                    (mask[b, j] = 0) or, with causal=True, lies in the future (j > i)
    p[b, :, i, :] = softmax_j s[b, :, i, :]
    out_i         = Σ_j p_ij v_j

Shapes: q, k, v (B, h, T, d) -- h heads, each its own (T, d) sequence; mask (B, T) with 1 on
real tokens, shared by the heads, or None; out (B, h, T, d). A query with no allowed key
(a row of pure padding) sees only replaced scores and so attends uniformly over all T keys:
its output is meaningless but finite, and callers ignore it.

Backward, g = dL/dout:
    dL/dv_j = Σ_i p_ij g_i                              dv = pᵀ g
    dL/dp_ij = g_i · v_j                                dp = g vᵀ
    dL/ds_ij = p_ij (dL/dp_ij − Σ_j' p_ij' dL/dp_ij')   (softmax backward), 0 where replaced
    dL/dq_i = Σ_j dL/ds_ij k_j / √d,   dL/dk_j = Σ_i dL/ds_ij q_i / √d

The reference path forms the (B, h, T, T) probabilities and keeps them for the backward. On
CUDA tensors a Triton kernel (``minidl.kernels``, FlashAttention's tiling) computes the same
without ever forming them: O(T·d) memory instead of O(T²). It equals
``MultiHeadSelfAttention``'s composition of matmul, where and softmax, which it replaces
when no attention dropout is active and the probabilities are not asked for.
"""
from __future__ import annotations

import math

from ... import kernels
from ..function import Function, ShapeError

# A replaced score is this constant rather than −∞: a query that may see no key at all (a
# row of pure padding) then gets a uniform softmax instead of 0/0 = NaN, and every other row
# gives its replaced keys exp(−1e9 − max) = exactly 0 weight, in float32 as in float64.
MASKED_SCORE = -1e9


def allowed_keys(xp, mask, causal, T):
    """Booleans broadcastable to (B, h, T_query, T_key): True where query i may see key j;
    None when nothing is masked."""
    allowed = None if mask is None else (mask > 0)[:, None, None, :]             # (B, 1, 1, T)
    if causal:
        positions = xp.arange(T)
        past = (positions[:, None] >= positions[None, :])[None, None]             # (1, 1, T, T): j ≤ i
        allowed = past if allowed is None else allowed & past
    return allowed


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, causal):
        xp = ctx.xp
        if q.ndim != 4 or not (q.shape == k.shape == v.shape) or (
                mask is not None and tuple(mask.shape) != (q.shape[0], q.shape[2])):
            raise ShapeError(f"scaled_dot_product_attention: expected q, k, v (B, h, T, d) and mask (B, T) or None; "
                             f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
                             f"mask {None if mask is None else tuple(mask.shape)}")
        ctx.kernel, ctx.causal = kernels.use_kernel(q), causal
        if ctx.kernel:
            out, row_max, row_sum = kernels.attention_forward(q, k, v, mask, causal)
            ctx.save_for_backward(q, k, v, mask, out, row_max, row_sum)
            return out
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = (q @ xp.swap_last(k)) * scale                                   # (B, h, T, T)
        allowed = allowed_keys(xp, mask, causal, q.shape[2])
        if allowed is not None:
            scores = xp.where(allowed, scores, MASKED_SCORE)
        p = xp.exp(scores - xp.max(scores, axis=-1, keepdims=True))
        p = p / xp.sum(p, axis=-1, keepdims=True)
        ctx.save_for_backward(q, k, v, p, allowed)
        ctx.scale = scale
        return p @ v

    @staticmethod
    def backward(ctx, grad):
        if ctx.kernel:
            return (*kernels.attention_backward(grad, *ctx.saved[:4], ctx.causal, *ctx.saved[4:]), None, None)
        xp = ctx.xp
        q, k, v, p, allowed = ctx.saved
        d_v = xp.swap_last(p) @ grad
        d_p = grad @ xp.swap_last(v)
        d_s = p * (d_p - xp.sum(p * d_p, axis=-1, keepdims=True))
        if allowed is not None:
            d_s = xp.where(allowed, d_s, 0.0)
        return (d_s @ k) * ctx.scale, (xp.swap_last(d_s) @ q) * ctx.scale, d_v, None, None


def scaled_dot_product_attention(q, k, v, mask=None, causal=False):
    """softmax(q kᵀ / √d, masked) v: q, k, v (B, h, T, d), mask (B, T) or None -> (B, h, T, d).
    See the module docstring."""
    from ..tensor import Tensor

    if mask is not None:
        mask = q.xp.astype(mask.data if isinstance(mask, Tensor) else q.xp.asarray(mask), q.dtype)
    return ScaledDotProductAttention.apply(q, k, v, mask, bool(causal))

"""Scaled dot-product attention (the transformer's) as ONE graph node.

    s[b, :, i, j] = q_i · k_j / √d,   replaced by MASKED_SCORE (−1e9) where key j is padding
                    (mask[b, j] = 0) or, with causal=True, lies in the future (j > i)
    p[b, :, i, :] = softmax_j s[b, :, i, :]
    p̃_ij         = p_ij · keep_ij / (1 − p_drop)     attention dropout while training, else p̃ = p
    out_i         = Σ_j p̃_ij v_j

Shapes: q, k, v (B, h, T, d) -- h heads, each its own (T, d) sequence; mask (B, T) with 1 on
real tokens, shared by the heads, or None; out (B, h, T, d). A query with no allowed key
(a row of pure padding) sees only replaced scores and so attends uniformly over all T keys:
its output is meaningless but finite, and callers ignore it.

Backward, g = dL/dout:
    dL/dv_j = Σ_i p̃_ij g_i                                dv = p̃ᵀ g
    dL/dp_ij = (g_i · v_j) · keep_ij / (1 − p_drop)
    dL/ds_ij = p_ij (dL/dp_ij − D_i),  D_i = Σ_j p_ij dL/dp_ij = g_i · out_i
               (softmax backward; 0 where replaced)
    dL/dq_i = Σ_j dL/ds_ij k_j / √d,   dL/dk_j = Σ_i dL/ds_ij q_i / √d

D_i = g_i · out_i (FlashAttention's identity) needs only (T, d) arrays, not a (T, T) one.

Two paths compute the same:
- the array path (NumPy, torch on the CPU, and CUDA with attention dropout) walks the
  queries in blocks of rows: each block forms its (B, h, rows, T) scores, softmax and
  dropout mask, uses them, and drops them. Nothing (B, h, T, T) is ever held, so memory
  grows linearly in T. The backward recomputes each block's p from the row max and row sum
  the forward kept (the same arithmetic, so the same bits) and regenerates its dropout mask
  from the seed the forward drew. While the whole (B, h, T, T) fits in ``BLOCK_ELEMENTS``
  there is one block, and the forward keeps p and the mask instead (as PyTorch does).
- on CUDA tensors without dropout a Triton kernel (``minidl.kernels``, FlashAttention's
  tiling) computes the same in O(T·d) memory.
"""
from __future__ import annotations

import math

from ... import kernels
from ..function import Function, ShapeError

# A replaced score is this constant rather than −∞: a query that may see no key at all (a
# row of pure padding) then gets a uniform softmax instead of 0/0 = NaN, and every other row
# gives its replaced keys exp(−1e9 − max) = exactly 0 weight, in float32 as in float64.
MASKED_SCORE = -1e9

# The most score elements (B · h · rows · T) one block of the array path forms: 8 Mi floats,
# 32 MB in float32 (the compression teacher's B = 32, h = 4, T = 256 is one block). Larger
# attention is cut into blocks of query rows.
BLOCK_ELEMENTS = 1 << 23


def allowed_keys(xp, mask, causal, T):
    """Booleans broadcastable to (B, h, T_query, T_key): True where query i may see key j;
    None when nothing is masked."""
    blocked = _blocked_keys(xp, mask, causal, 0, T, T)
    return None if blocked is None else ~blocked


def _blocked_keys(xp, mask, causal, start, stop, T):
    """Booleans broadcastable to (B, h, stop − start, T): True where query i (start ≤ i < stop)
    may NOT see key j; None when nothing is masked."""
    blocked = None if mask is None else (mask <= 0)[:, None, None, :]            # (B, 1, 1, T)
    if causal:
        future = (xp.arange(T)[None, :] > xp.arange(T)[start:stop, None])[None, None]  # (1, 1, rows, T): j > i
        blocked = future if blocked is None else blocked | future
    return blocked


def _row_blocks(B, h, T):
    """[(start, stop), ...]: query rows per block, so a block's scores stay ≤ BLOCK_ELEMENTS."""
    rows = max(1, min(T, BLOCK_ELEMENTS // max(1, B * h * T)))
    return [(start, min(start + rows, T)) for start in range(0, T, rows)]


def dropout_keep(xp, seed, start, shape, p_drop, dtype):
    """The block's dropout mask keep / (1 − p_drop) (B, h, rows, T): a fresh generator per block,
    seeded by the forward's seed and the block's first row, so the backward regenerates it."""
    keep = xp.rand(shape, dtype, xp.new_generator(seed + start)) >= p_drop
    return xp.astype(keep, dtype) * (1.0 / (1.0 - p_drop))


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, causal, p_drop, seed):
        if q.ndim != 4 or not (q.shape == k.shape == v.shape) or (
                mask is not None and tuple(mask.shape) != (q.shape[0], q.shape[2])):
            raise ShapeError(f"scaled_dot_product_attention: expected q, k, v (B, h, T, d) and mask (B, T) or None; "
                             f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
                             f"mask {None if mask is None else tuple(mask.shape)}")
        ctx.kernel, ctx.causal = kernels.use_kernel(q) and p_drop == 0.0, causal
        if ctx.kernel:
            out, row_max, row_sum = kernels.attention_forward(q, k, v, mask, causal)
            ctx.save_for_backward(q, k, v, mask, out, row_max, row_sum)
            return out
        xp = ctx.xp
        B, h, T, d = q.shape
        scale, dtype = 1.0 / math.sqrt(d), xp.dtype_name(q)
        out = xp.zeros(q.shape, dtype)
        row_max, row_sum = xp.zeros((B, h, T, 1), dtype), xp.zeros((B, h, T, 1), dtype)
        blocks, kept = _row_blocks(B, h, T), None
        for start, stop in blocks:
            p, row_max[:, :, start:stop], row_sum[:, :, start:stop] = _softmax_rows(
                xp, _scores(xp, q[:, :, start:stop], k, mask, causal, start, scale), None, None)
            keep = dropout_keep(xp, seed, start, p.shape, p_drop, dtype) if p_drop > 0.0 else None
            if len(blocks) == 1:
                kept = (p, keep)
            out[:, :, start:stop] = (p if keep is None else p * keep) @ v
        ctx.save_for_backward(q, k, v, mask, out, row_max, row_sum, kept)
        ctx.scale, ctx.p_drop, ctx.seed = scale, p_drop, seed
        return out

    @staticmethod
    def backward(ctx, grad):
        if ctx.kernel:
            return (*kernels.attention_backward(grad, *ctx.saved[:4], ctx.causal, *ctx.saved[4:]), None, None,
                    None, None)
        xp = ctx.xp
        q, k, v, mask, out, row_max, row_sum, kept = ctx.saved
        B, h, T, _ = q.shape
        dtype = xp.dtype_name(q)
        d_q, d_k, d_v = xp.zeros(q.shape, dtype), xp.zeros(k.shape, dtype), xp.zeros(v.shape, dtype)
        D = xp.sum(grad * out, axis=-1, keepdims=True)                          # (B, h, T, 1): Σ_j p_ij dL/dp_ij
        for start, stop in _row_blocks(B, h, T):
            rows = slice(start, stop)
            if kept is not None:
                p, keep = kept
            else:
                p = _softmax_rows(xp, _scores(xp, q[:, :, rows], k, mask, ctx.causal, start, ctx.scale),
                                  row_max[:, :, rows], row_sum[:, :, rows])[0]
                keep = dropout_keep(xp, ctx.seed, start, p.shape, ctx.p_drop, dtype) if ctx.p_drop > 0.0 else None
            d_p = grad[:, :, rows] @ xp.swap_last(v)                              # (B, h, rows, T): dL/dp̃
            if keep is not None:
                d_v += xp.swap_last(p * keep) @ grad[:, :, rows]
                d_p *= keep                                                       # dL/dp
            else:
                d_v += xp.swap_last(p) @ grad[:, :, rows]
            d_p -= D[:, :, rows]
            d_p *= p
            d_s = d_p                                                             # dL/ds, × 1/√d below
            _zero_rows_without_keys(xp, d_s, mask, ctx.causal, start, stop, T)
            d_q[:, :, rows] = (d_s @ k) * ctx.scale
            d_k += (xp.swap_last(d_s) @ q[:, :, rows]) * ctx.scale
        return d_q, d_k, d_v, None, None, None, None


def _scores(xp, q_rows, k, mask, causal, start, scale):
    """The masked scores s of a block of query rows: q_rows (B, h, rows, d), k (B, h, T, d)
    -> (B, h, rows, T), replaced in place (no second full-size array)."""
    s = q_rows @ xp.swap_last(k)
    s *= scale
    blocked = _blocked_keys(xp, mask, causal, start, start + q_rows.shape[2], k.shape[2])
    if blocked is not None:
        xp.fill_where_(s, blocked, MASKED_SCORE)
    return s


def _softmax_rows(xp, s, row_max, row_sum):
    """s (B, h, rows, T) -> p = exp(s − row_max) / row_sum, in place. The forward passes
    ``row_max`` None: it computes the row max and sum and returns them too; the backward
    passes the forward's, so its p equals the forward's bit for bit."""
    first = row_max is None
    if first:
        row_max = xp.max(s, axis=-1, keepdims=True)                             # (B, h, rows, 1)
    s -= row_max
    xp.exp_(s)
    if first:
        row_sum = xp.sum(s, axis=-1, keepdims=True)
    s /= row_sum
    return s, row_max, row_sum


def _zero_rows_without_keys(xp, d_s, mask, causal, start, stop, T):
    """A query that may see no key got uniform weights over replaced scores; like the
    composed path (where's backward), no gradient flows to those scores."""
    blocked = _blocked_keys(xp, mask, causal, start, stop, T)
    if blocked is None:
        return
    no_key = xp.sum(~blocked, axis=-1, keepdims=True) == 0                      # (B, 1, rows, 1)
    if no_key.any():
        xp.fill_where_(d_s, no_key, 0.0)


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, dropout=0.0, generator=None):
    """dropout(softmax(q kᵀ / √d, masked)) v: q, k, v (B, h, T, d), mask (B, T) or None ->
    (B, h, T, d). ``dropout``: the probability of dropping an attention weight (training only;
    the mask comes from ``generator``, default the backend's seeded one). See the module docstring."""
    from ..tensor import Tensor

    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout is a probability in [0, 1), got {dropout}")
    xp = q.xp
    if mask is not None:
        mask = xp.astype(mask.data if isinstance(mask, Tensor) else xp.asarray(mask), q.dtype)
    seed = int(float(xp.rand((), "float64", generator) * 2 ** 52)) if dropout > 0 else 0
    return ScaledDotProductAttention.apply(q, k, v, mask, bool(causal), float(dropout), seed)

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

Three paths compute the same:
- on torch CPU tensors without attention dropout, PyTorch's fused CPU attention (the
  backend's ``attention_kernel``: FlashAttention's blocking over keys with an online softmax,
  multithreaded, O(T·d) memory), forward and backward, from its out and logsumexp. It gives
  a query that may see no key zeros rather than uniform weights, so such inputs (and
  ``kernels.mode("reference")``) take the array path.
- the array path (NumPy, torch with attention dropout or a keyless query) walks the
  queries in blocks of rows: each block forms its (B, h, rows, T) scores, exponentials and
  dropout mask, uses them, and drops them. Nothing (B, h, T, T) is ever held, so memory
  grows linearly in T. It never divides a (T, T) array: with e_ij = exp(s_ij − m_i) and
  l_i = Σ_j e_ij (row max m, row sum l), p = e / l, so
      out_i = (Σ_j e_ij v_j) / l_i,    g'_i = g_i / l_i,    D'_i = D_i / l_i,
      dv = eᵀ g',   dL/ds_ij = e_ij (g'_i · v_j − D'_i),
  and the divisions touch (T, d) and (T, 1) arrays only. The backward recomputes each
  block's e from the m the forward kept (the same arithmetic, so the same bits) and
  regenerates its dropout mask from the seed the forward drew. While the whole
  (B, h, T, T) fits in ``BLOCK_ELEMENTS`` there is one block, and the forward keeps e and
  the mask instead (as PyTorch keeps its probabilities): float e and a boolean mask, 5 bytes
  an attention weight in float32. Dropout's 1/(1 − p_drop) is folded into the (T, d) and
  (T, 1) factors too, so the mask is a plain 0/1 multiplier.
- on CUDA tensors without dropout a Triton kernel (``minidl.kernels``, FlashAttention's
  tiling) computes the same in O(T·d) memory.
"""
from __future__ import annotations

import math

from ... import kernels
from ..function import Function, OpError, ShapeError, mask_array

# A replaced score is this constant rather than −∞: a query that may see no key at all (a
# row of pure padding) then gets a uniform softmax instead of 0/0 = NaN, and every other row
# gives its replaced keys exp(−1e9 − max) = exactly 0 weight, in float32 as in float64.
MASKED_SCORE = -1e9

# The most score elements (B · h · rows · T) one block of the array path forms: 32 Mi, 128 MB
# in float32 (the compression teacher's B = 32, h = 4 is one block up to T = 512). Larger
# attention is cut into blocks of query rows.
BLOCK_ELEMENTS = 1 << 25


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


def _some_query_sees_no_key(xp, mask, causal):
    """Is there a query that may see no key? A sequence of pure padding, or with causal=True one
    whose first token is padding. Only such queries need the array path's uniform weights."""
    if mask is None:
        return False
    return bool((xp.max(mask, axis=-1) <= 0).any()) or (causal and bool((mask[:, 0] <= 0).any()))


def _row_blocks(B, h, T):
    """[(start, stop), ...]: query rows per block, so a block's scores stay ≤ BLOCK_ELEMENTS."""
    rows = max(1, min(T, BLOCK_ELEMENTS // max(1, B * h * T)))
    return [(start, min(start + rows, T)) for start in range(0, T, rows)]


def dropout_mask(xp, seed, start, shape, p_drop, dtype):
    """The block's dropout mask (B, h, rows, T), True where a weight is dropped (probability
    p_drop): a fresh generator per block, seeded by the forward's seed and the block's first
    row, so the backward regenerates it. Booleans, used by masked fills: a float mask would
    take 4 bytes a weight, and multiplying by a boolean one casts it to float first."""
    return xp.rand(shape, dtype, xp.new_generator(seed + start)) < p_drop


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, causal, p_drop, seed):
        if q.ndim != 4 or not (q.shape == k.shape == v.shape) or (
                mask is not None and tuple(mask.shape) != (q.shape[0], q.shape[2])):
            raise ShapeError(f"scaled_dot_product_attention: expected q, k, v (B, h, T, d) and mask (B, T) or None; "
                             f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
                             f"mask {None if mask is None else tuple(mask.shape)}")
        xp = ctx.xp
        ctx.causal, ctx.kernel, ctx.backend_kernel = causal, p_drop == 0.0 and kernels.use_kernel(q), False
        if ctx.kernel:
            out, row_max, row_sum = kernels.attention_forward(q, k, v, mask, causal)
            ctx.save_for_backward(q, k, v, mask, out, row_max, row_sum)
            return out
        if not q.shape[2]:   # no positions: no max over no keys (and torch's fused CPU kernel dies of SIGFPE)
            return xp.zeros_like(q)
        if p_drop == 0.0 and kernels.get_mode() == "auto" and not _some_query_sees_no_key(xp, mask, causal):
            blocked = None if mask is None else mask <= 0
            fused = xp.attention_kernel(q, k, v, blocked, causal)
            if fused is not None:
                ctx.backend_kernel = True
                ctx.save_for_backward(q, k, v, blocked, *fused)
                return fused[0]
        B, h, T, d = q.shape
        dtype = xp.dtype_name(q)
        q = q * (1.0 / math.sqrt(d))                 # q/√d: scaling (T, d) rather than (T, T) scores
        blocks, kept, outs, row_max, row_sum = _row_blocks(B, h, T), None, [], [], []
        for start, stop in blocks:
            e, m, no_key = _exponentials(xp, q[:, :, start:stop], k, mask, causal, start)
            l = xp.sum(e, axis=-1, keepdims=True)                                # (B, h, rows, 1)
            drop = dropout_mask(xp, seed, start, e.shape, p_drop, dtype) if p_drop > 0.0 else None
            if len(blocks) == 1:
                kept = (e, drop, no_key)
            out = (e if drop is None else xp.where(drop, 0.0, e)) @ v              # (B, h, rows, d)
            out *= 1.0 / (1.0 - p_drop) / l
            outs.append(out)
            row_max.append(m)
            row_sum.append(l)
        out, row_max, row_sum = (_join(xp, parts) for parts in (outs, row_max, row_sum))
        ctx.save_for_backward(q, k, v, mask, out, row_max, row_sum, kept)
        ctx.scale, ctx.p_drop, ctx.seed = 1.0 / math.sqrt(d), p_drop, seed
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        if ctx.kernel or ctx.backend_kernel:   # (grad, q, k, v, mask or blocked, causal, what the forward kernel kept)
            kernel_backward = kernels.attention_backward if ctx.kernel else xp.attention_kernel_backward
            return (*kernel_backward(grad, *ctx.saved[:4], ctx.causal, *ctx.saved[4:]), None, None, None, None)
        if not grad.shape[2]:   # no positions (the forward kept nothing): q, k and v are as empty as grad
            return grad, grad, grad, None, None, None, None
        q, k, v, mask, out, row_max, row_sum, kept = ctx.saved                  # q is q/√d
        B, h, T, _ = q.shape
        dtype = xp.dtype_name(q)
        grad = grad / row_sum                                                    # g' = g / l   (B, h, T, d)
        D = xp.sum(grad * out, axis=-1, keepdims=True)                          # D' = g'·out  (B, h, T, 1)
        if ctx.p_drop > 0.0:
            grad = grad * (1.0 / (1.0 - ctx.p_drop))                             # dropout's scale, on (T, d)
        d_q, d_k, d_v = [], None, None
        for start, stop in _row_blocks(B, h, T):
            rows = slice(start, stop)
            if kept is not None:
                e, drop, no_key = kept
            else:
                e, _, no_key = _exponentials(xp, q[:, :, rows], k, mask, ctx.causal, start, row_max[:, :, rows])
                drop = dropout_mask(xp, ctx.seed, start, e.shape, ctx.p_drop, dtype) if ctx.p_drop > 0.0 else None
            dropped = e if drop is None else xp.where(drop, 0.0, e)
            g = grad[:, :, rows]
            d_v_rows = xp.swap_last(dropped) @ g
            d_s = g @ xp.swap_last(v)                                            # (B, h, rows, T): dL/dp̃ / l
            if drop is not None:                                                  # (× 1/(1 − p_drop), in g)
                xp.fill_where_(d_s, drop, 0.0)                                    # dL/dp / l
            d_s -= D[:, :, rows]
            d_s *= e                                                              # dL/ds
            if no_key is not None:                   # uniform weights over blocked keys: no gradient to s
                xp.fill_where_(d_s, no_key, 0.0)
            d_q.append((d_s @ k) * ctx.scale)
            d_k_rows = xp.swap_last(d_s) @ q[:, :, rows]                          # q/√d: the 1/√d of ds/dk
            d_k = d_k_rows if d_k is None else d_k + d_k_rows
            d_v = d_v_rows if d_v is None else d_v + d_v_rows
        return _join(xp, d_q), d_k, d_v, None, None, None, None


def _join(xp, blocks):
    """The blocks' (B, h, rows, ·) results along the rows; one block is returned as it is."""
    return blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=2)


def _exponentials(xp, q_rows, k, mask, causal, start, row_max=None):
    """e = exp(s − m) of a block of query rows, in place in one (B, h, rows, T) array, from
    q_rows/√d (B, h, rows, d) and k (B, h, T, d); -> (e, m, no_key).

    Keys a query may not see get s = −∞ here, so e = 0 there exactly, as MASKED_SCORE gives in
    the composition: −∞ is the value exp evaluates fastest (−1e9 takes its slow path, several
    times slower). A query with no key at all (no_key (B, 1, rows, 1), None when there is
    none) gets e = 1 on every key: the composition's uniform weights. m (B, h, rows, 1) is the
    row max (0 where it is −∞); the backward passes the forward's m, so its e equals the
    forward's bit for bit."""
    s = q_rows @ xp.swap_last(k)
    blocked = _blocked_keys(xp, mask, causal, start, start + q_rows.shape[2], k.shape[2])
    no_key = None
    if blocked is not None:
        xp.fill_where_(s, blocked, float("-inf"))
        no_key = xp.sum(~blocked, axis=-1, keepdims=True) == 0
        if not no_key.any():
            no_key = None
    if row_max is None:
        row_max = xp.max(s, axis=-1, keepdims=True)
        if no_key is not None:
            xp.fill_where_(row_max, no_key, 0.0)
    s -= row_max
    e = xp.exp_(s)
    if no_key is not None:
        xp.fill_where_(e, no_key, 1.0)
    return e, row_max, no_key


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, dropout=0.0, generator=None):
    """dropout(softmax(q kᵀ / √d, masked)) v: q, k, v (B, h, T, d), mask (B, T) or None ->
    (B, h, T, d). ``dropout``: the probability of dropping an attention weight (training only;
    the mask comes from ``generator``, default the backend's seeded one). See the module docstring."""
    if not 0.0 <= dropout < 1.0:
        raise OpError(f"scaled_dot_product_attention: dropout is a probability in [0, 1), got {dropout}")
    xp = q.xp
    if mask is not None:
        mask = mask_array(mask, q, "scaled_dot_product_attention")
    seed = int(float(xp.rand((), "float64", generator) * 2 ** 52)) if dropout > 0 else 0
    return ScaledDotProductAttention.apply(q, k, v, mask, bool(causal), float(dropout), seed)

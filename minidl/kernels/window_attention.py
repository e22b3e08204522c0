"""Windowed self-attention in O(T·w·d) time and O(T·w) extra memory, never a T×T matrix.

Shapes as in ``minidl.autograd.ops.window_attention``: q, k, v (B, T, d), mask (B, T)
with 1 on real words, radius r, window w = 2r + 1 slots; slot k of word i is word
j = i + k − r. Each program takes a block of BLOCK_T words of one sequence and gathers
their windows as (BLOCK_T, BLOCK_W, BLOCK_D) tiles (neighbouring windows overlap, so
the repeated rows come from the cache, not from memory):

    s[i, k] = q_i · k_vec_{i+k−r} / √d      (−1e30 off the sequence, on padding, or for a padding word i)
    a[i, :] = softmax_k s[i, :]             (all zero for a padding word)
    out_i   = Σ_k a[i, k] v_{i+k−r}

Backward, g = dL/dout, in two launches so that no two programs add into the same row:

    per query word i:   dL/da[i, k] = g_i · v_{i+k−r}
                        dL/ds[i, k] = a[i, k] (dL/da[i, k] − Σ_k' a[i, k'] dL/da[i, k'])
                        dL/dq_i     = Σ_k dL/ds[i, k] k_vec_{i+k−r} / √d
    per key word j:     dL/dv_j     = Σ_k a[j−k+r, k] g_{j−k+r}
                        dL/dk_vec_j = Σ_k dL/ds[j−k+r, k] q_{j−k+r} / √d

The second launch gathers, for word j, the queries i = j − k + r that saw it in slot k.
dL/ds (B, T, w) is the only array kept between the two. 1/√d is computed inside the
kernels in the inputs' dtype (a Python float argument would arrive as float32).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_launchable

MAX_TILE = 8192  # elements of one (BLOCK_T, BLOCK_W, BLOCK_D) window tile


@triton.jit
def _window(i, r, T, BLOCK_W: tl.constexpr):
    """For words i (BLOCK_T,): the other end j = i + k − r of each slot k (BLOCK_T, BLOCK_W), and
    whether that slot exists (k < 2r + 1) and j lies in 0..T−1."""
    slot = tl.arange(0, BLOCK_W)[None, :]
    j = i[:, None] + slot - r
    return j, (slot < 2 * r + 1) & (j >= 0) & (j < T)


@triton.jit
def _load_rows(ptr, words, inside, D, BLOCK_D: tl.constexpr):
    """Rows ``words`` (any shape S) of one (T, d) sequence as an (S..., BLOCK_D) tile, zero where not ``inside``."""
    dim = tl.arange(0, BLOCK_D)
    offsets = tl.expand_dims(words, -1) * D + dim
    return tl.load(ptr + offsets, mask=tl.expand_dims(inside, -1) & (dim < D), other=0.0)


@triton.jit
def _store_rows(ptr, words, inside, values, D, BLOCK_D: tl.constexpr):
    """values (BLOCK_T, BLOCK_D) into rows ``words`` of one (T, d) sequence, where ``inside``."""
    dim = tl.arange(0, BLOCK_D)
    tl.store(ptr + words[:, None] * D + dim[None, :], values, mask=inside[:, None] & (dim[None, :] < D))


@triton.jit
def _scale(D, like):
    """1/√d in the dtype of ``like``. D must stay a runtime integer (Triton would make d = 1 a
    constexpr, which has no ``.to``), hence ``do_not_specialize=["D"]`` on the kernels."""
    return 1.0 / tl.sqrt(D.to(like.dtype))


@triton.jit(do_not_specialize=["D"])
def window_attention_forward_kernel(q_ptr, k_ptr, v_ptr, mask_ptr, out_ptr, weights_ptr, T, D, r,
                                    BLOCK_T: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_D: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    i = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    j, in_window = _window(i, r, T, BLOCK_W)
    sequence = batch * T * D                                  # this sequence's rows in q, k, v, out
    query_real = tl.load(mask_ptr + batch * T + i, mask=i < T, other=0.0) > 0
    key_real = tl.load(mask_ptr + batch * T + j, mask=in_window, other=0.0) > 0
    valid = key_real & query_real[:, None]

    q = _load_rows(q_ptr + sequence, i, i < T, D, BLOCK_D)                       # (BLOCK_T, BLOCK_D)
    k_window = _load_rows(k_ptr + sequence, j, in_window, D, BLOCK_D)            # (BLOCK_T, BLOCK_W, BLOCK_D)
    scores = tl.sum(q[:, None, :] * k_window, axis=2) * _scale(D, q)
    scores = tl.where(valid, scores, -1e30)
    weights = tl.where(valid, tl.exp(scores - tl.max(scores, axis=1)[:, None]), 0.0)
    total = tl.sum(weights, axis=1)
    weights = weights / tl.where(total > 0, total, 1.0)[:, None]

    W = 2 * r + 1
    slot = tl.arange(0, BLOCK_W)[None, :]
    tl.store(weights_ptr + (batch * T + i[:, None]) * W + slot, weights, mask=(i[:, None] < T) & (slot < W))
    v_window = _load_rows(v_ptr + sequence, j, in_window, D, BLOCK_D)
    _store_rows(out_ptr + sequence, i, i < T, tl.sum(weights[:, :, None] * v_window, axis=1), D, BLOCK_D)


@triton.jit(do_not_specialize=["D"])
def window_attention_query_grad_kernel(grad_ptr, q_ptr, k_ptr, v_ptr, weights_ptr, d_scores_ptr, d_q_ptr, T, D, r,
                                       BLOCK_T: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_D: tl.constexpr):
    """dL/ds (stored) and dL/dq for a block of query words i."""
    batch = tl.program_id(1).to(tl.int64)
    i = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    j, in_window = _window(i, r, T, BLOCK_W)
    sequence = batch * T * D
    W = 2 * r + 1
    slot = tl.arange(0, BLOCK_W)[None, :]
    scores_at = (batch * T + i[:, None]) * W + slot
    a = tl.load(weights_ptr + scores_at, mask=in_window, other=0.0)
    g = _load_rows(grad_ptr + sequence, i, i < T, D, BLOCK_D)
    d_a = tl.sum(g[:, None, :] * _load_rows(v_ptr + sequence, j, in_window, D, BLOCK_D), axis=2)
    d_s = a * (d_a - tl.sum(a * d_a, axis=1)[:, None])
    tl.store(d_scores_ptr + scores_at, d_s, mask=(i[:, None] < T) & (slot < W))
    d_q = tl.sum(d_s[:, :, None] * _load_rows(k_ptr + sequence, j, in_window, D, BLOCK_D), axis=1)
    _store_rows(d_q_ptr + sequence, i, i < T, d_q * _scale(D, g), D, BLOCK_D)


@triton.jit(do_not_specialize=["D"])
def window_attention_key_grad_kernel(grad_ptr, q_ptr, weights_ptr, d_scores_ptr, d_k_ptr, d_v_ptr, T, D, r,
                                     BLOCK_T: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_D: tl.constexpr):
    """dL/dk and dL/dv for a block of key words j, gathered from the queries i = j − k + r."""
    batch = tl.program_id(1).to(tl.int64)
    j = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    W = 2 * r + 1
    slot = tl.arange(0, BLOCK_W)[None, :]
    i = j[:, None] + r - slot                                 # the query that saw word j in slot k
    seen = (slot < W) & (i >= 0) & (i < T)
    sequence = batch * T * D
    scores_at = (batch * T + i) * W + slot
    a = tl.load(weights_ptr + scores_at, mask=seen, other=0.0)
    d_s = tl.load(d_scores_ptr + scores_at, mask=seen, other=0.0)
    d_v = tl.sum(a[:, :, None] * _load_rows(grad_ptr + sequence, i, seen, D, BLOCK_D), axis=1)
    d_k = tl.sum(d_s[:, :, None] * _load_rows(q_ptr + sequence, i, seen, D, BLOCK_D), axis=1)
    _store_rows(d_v_ptr + sequence, j, j < T, d_v, D, BLOCK_D)
    _store_rows(d_k_ptr + sequence, j, j < T, d_k * _scale(D, d_v), D, BLOCK_D)


def launch_config(B, T, D, radius):
    """How every kernel here runs on B sequences of T words of width D: (grid, constexprs, options);
    the options are Triton's defaults. ``compile_check`` compiles this."""
    block_w = triton.next_power_of_2(2 * radius + 1)
    block_d = triton.next_power_of_2(D)
    block_t = max(1, min(triton.next_power_of_2(T), MAX_TILE // (block_w * block_d)))
    return (triton.cdiv(T, block_t), B), dict(BLOCK_T=block_t, BLOCK_W=block_w, BLOCK_D=block_d), {}


def _launch(kernel, B, T, D, radius, *args):
    check_launchable(args[0])
    grid, constexprs, options = launch_config(B, T, D, radius)
    kernel[grid](*args, T, D, radius, **constexprs, **options)


def window_attention_forward(q, k, v, mask, radius):
    """q, k, v (B, T, d), mask (B, T) -> out (B, T, d), attention weights (B, T, 2r+1)."""
    q, k, v, mask = q.contiguous(), k.contiguous(), v.contiguous(), mask.contiguous()
    B, T, D = q.shape
    out, weights = torch.empty_like(q), q.new_empty((B, T, 2 * radius + 1))
    _launch(window_attention_forward_kernel, B, T, D, radius, q, k, v, mask, out, weights)
    return out, weights


def window_attention_backward(grad, q, k, v, weights, radius):
    """-> dL/dq, dL/dk, dL/dv, each (B, T, d); contiguous inputs, as in the forward (views were read, and
    gradients written, as if they were)."""
    grad, q, k, v = grad.contiguous(), q.contiguous(), k.contiguous(), v.contiguous()
    B, T, D = q.shape
    d_scores, d_q, d_k, d_v = torch.empty_like(weights), torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    _launch(window_attention_query_grad_kernel, B, T, D, radius, grad, q, k, v, weights, d_scores, d_q)
    _launch(window_attention_key_grad_kernel, B, T, D, radius, grad, q, weights, d_scores, d_k, d_v)
    return d_q, d_k, d_v

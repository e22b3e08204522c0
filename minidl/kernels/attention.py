"""Scaled dot-product attention (the transformer's) without a T×T matrix: FlashAttention's
tiling and online softmax, forward and backward.

Shapes as in ``minidl.autograd.ops.attention``: q, k, v (B, h, T, d), read as B·h
independent (T, d) sequences; mask (B, T) with 1 on real tokens (shared by a batch row's h
heads), or none; out (B, h, T, d). Every program owns BLOCK query (or key) rows of one
sequence and walks over the other side BLOCK rows at a time:

    s_ij = q_i · k_j / √d,   replaced by MASKED_SCORE (−1e9) where key j is padding or,
           causal, j > i; a query with no allowed key thus gets uniform weights over all T
           keys, exactly as in the reference path (its output is meaningless but finite)
    forward, per key block, with the running row max m, denominator l and output o:
        m' = max(m, max_j s_ij)
        l ← l·e^(m−m') + Σ_j e^(s_ij−m'),     o ← o·e^(m−m') + Σ_j e^(s_ij−m') v_j
    out_i = o_i / l_i;   m and l are kept for the backward: p_ij = e^(s_ij − m_i) / l_i
    (not as one log-sum-exp m + log l: next to m = −1e9, float32 would round log l away)

Causal programs skip the key blocks wholly in their future, unless one of their real
queries has no allowed key at all (m = MASKED_SCORE), which then needs every key.

Backward, g = dL/dout, Δ_i = g_i · out_i (= Σ_j p_ij g_i·v_j), in two launches so that no two
programs add into the same row (no atomics):

    per key block:     dv_j = Σ_i p_ij g_i,   dk_j = Σ_i ds_ij q_i / √d
    per query block:   dq_i = Σ_j ds_ij k_j / √d
    with ds_ij = p_ij (g_i · v_j − Δ_i) where (i, j) is allowed, else 0 (a replaced score is
    a constant: no gradient reaches q or k through it)

p is recomputed from q, k, m and l in both: the backward too keeps O(T·d) memory.

Matrix products (``matmul.py``): float32 uses ``tl.dot``, "ieee" or "tf32" (block dimensions
≥ 16, so a short d is zero-padded to 16), float64 a broadcast product summed over K with
blocks small enough for its (BLOCK, BLOCK, BLOCK_D) tile. BLOCK was chosen, without a GPU
to time it, as the largest for which ``compile_check`` shows (almost) no register spills on
sm_90 at d = 64: 32 rows in "tf32", 16 in "ieee", whose products on plain multiply-adds
need far more registers; tune it with ``minidl bench kernels --only mha`` on a GPU.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_launchable
from .matmul import matmul, precision

# jit functions may read only constexpr globals
MASKED_SCORE = tl.constexpr(-1e9)    # as in ops.attention: a replaced score, still a candidate key
NOT_A_KEY = tl.constexpr(-1e30)      # a block's columns past T: never a key
NO_KEY_SEEN = tl.constexpr(-1e8)     # a row max below this saw only replaced scores
FLOAT64_TILE = 8192                  # elements of float64's (BLOCK, BLOCK, BLOCK_D) product tile


@triton.jit
def _load_rows(ptr, rows, T, D, BLOCK_D: tl.constexpr):
    """Rows ``rows`` (BLOCK,) of one (T, d) sequence as a (BLOCK, BLOCK_D) tile, zero outside."""
    dim = tl.arange(0, BLOCK_D)
    return tl.load(ptr + rows[:, None] * D + dim[None, :], mask=(rows[:, None] < T) & (dim[None, :] < D), other=0.0)


@triton.jit
def _store_rows(ptr, rows, values, T, D, BLOCK_D: tl.constexpr):
    dim = tl.arange(0, BLOCK_D)
    tl.store(ptr + rows[:, None] * D + dim[None, :], values, mask=(rows[:, None] < T) & (dim[None, :] < D))


@triton.jit
def _scores(q, k, i, j, key_mask_ptr, T, scale, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr,
            PRECISION: tl.constexpr):
    """The (BLOCK, BLOCK) scores of queries i and keys j with replacements, and where (i, j) is allowed."""
    s = matmul(q, tl.trans(k), PRECISION) * scale
    allowed = (i[:, None] >= 0) & (j[None, :] < T)                # (BLOCK, BLOCK): keys inside the sequence
    if HAS_MASK:
        allowed = allowed & (tl.load(key_mask_ptr + j, mask=j < T, other=0.0) > 0)[None, :]
    if CAUSAL:
        allowed = allowed & (j[None, :] <= i[:, None])
    s = tl.where(allowed, s, MASKED_SCORE)
    return tl.where((j < T)[None, :], s, NOT_A_KEY), allowed


@triton.jit
def _forward_block(q, m, l, o, i, start, k_ptr, v_ptr, key_mask_ptr, T, D, scale, HAS_MASK: tl.constexpr,
                   CAUSAL: tl.constexpr, PRECISION: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """The online-softmax update of (m, l, o) with the keys start .. start + BLOCK − 1."""
    j = start + tl.arange(0, BLOCK)
    k = _load_rows(k_ptr, j, T, D, BLOCK_D)
    s, _ = _scores(q, k, i, j, key_mask_ptr, T, scale, HAS_MASK, CAUSAL, PRECISION)
    m_new = tl.maximum(m, tl.max(s, axis=1))
    rescale = tl.exp(m - m_new)
    p = tl.exp(s - m_new[:, None])
    l = l * rescale + tl.sum(p, axis=1)
    o = o * rescale[:, None] + matmul(p, _load_rows(v_ptr, j, T, D, BLOCK_D), PRECISION)
    return m_new, l, o


@triton.jit(do_not_specialize=["D"])
def attention_forward_kernel(q_ptr, k_ptr, v_ptr, key_mask_ptr, out_ptr, row_max_ptr, row_sum_ptr, T, D, HEADS,
                             HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
                             BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    sequence = tl.program_id(1).to(tl.int64)                     # b·h + head
    rows_at = sequence * T * D
    key_mask_ptr += (sequence // HEADS) * T
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    q = _load_rows(q_ptr + rows_at, i, T, D, BLOCK_D)
    scale = 1.0 / tl.sqrt(D.to(q.dtype))
    m = tl.full((BLOCK,), NOT_A_KEY, q.dtype)
    l = tl.zeros((BLOCK,), q.dtype)
    o = tl.zeros((BLOCK, BLOCK_D), q.dtype)
    diagonal_end = (tl.program_id(0) + 1) * BLOCK if CAUSAL else T   # past it every key is in the future
    for start in range(0, diagonal_end, BLOCK):
        m, l, o = _forward_block(q, m, l, o, i, start, k_ptr + rows_at, v_ptr + rows_at, key_mask_ptr, T, D,
                                 scale, HAS_MASK, CAUSAL, PRECISION, BLOCK, BLOCK_D)
    if CAUSAL:
        if tl.min(tl.where(i < T, m, 0.0)) < NO_KEY_SEEN:          # a real query saw no key: it needs them all
            for start in range(diagonal_end, T, BLOCK):
                m, l, o = _forward_block(q, m, l, o, i, start, k_ptr + rows_at, v_ptr + rows_at, key_mask_ptr, T,
                                         D, scale, HAS_MASK, CAUSAL, PRECISION, BLOCK, BLOCK_D)
    _store_rows(out_ptr + rows_at, i, o / l[:, None], T, D, BLOCK_D)
    tl.store(row_max_ptr + sequence * T + i, m, mask=i < T)
    tl.store(row_sum_ptr + sequence * T + i, l, mask=i < T)


@triton.jit
def _row_statistics(row_max_ptr, row_sum_ptr, i, T):
    """The forward's m_i and l_i for rows i (BLOCK,); rows past T read m = 0, l = 1."""
    return tl.load(row_max_ptr + i, mask=i < T, other=0.0), tl.load(row_sum_ptr + i, mask=i < T, other=1.0)


@triton.jit
def _probabilities(q, k, m, l, i, j, key_mask_ptr, T, scale, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr,
                   PRECISION: tl.constexpr):
    """p_ij = e^(s_ij − m_i) / l_i (0 for columns and rows past T), and where (i, j) is allowed."""
    s, allowed = _scores(q, k, i, j, key_mask_ptr, T, scale, HAS_MASK, CAUSAL, PRECISION)
    p = tl.where((i < T)[:, None], tl.exp(s - m[:, None]) / l[:, None], 0.0)
    return p, allowed & (i < T)[:, None]


@triton.jit
def _score_gradient(p, allowed, g, v, delta, PRECISION: tl.constexpr):
    """ds_ij = p_ij (g_i · v_j − Δ_i) where (i, j) is allowed, else 0."""
    return tl.where(allowed, p * (matmul(g, tl.trans(v), PRECISION) - delta[:, None]), 0.0)


@triton.jit
def _key_grad_block(dk, dv, k, v, j, start, q_ptr, grad_ptr, row_max_ptr, row_sum_ptr, delta_ptr, key_mask_ptr,
                    T, D, scale, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
                    BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """dk, dv of keys j plus what the queries start .. start + BLOCK − 1 give them."""
    i = start + tl.arange(0, BLOCK)
    q = _load_rows(q_ptr, i, T, D, BLOCK_D)
    g = _load_rows(grad_ptr, i, T, D, BLOCK_D)
    m, l = _row_statistics(row_max_ptr, row_sum_ptr, i, T)
    delta = tl.load(delta_ptr + i, mask=i < T, other=0.0)
    p, allowed = _probabilities(q, k, m, l, i, j, key_mask_ptr, T, scale, HAS_MASK, CAUSAL, PRECISION)
    dv += matmul(tl.trans(p), g, PRECISION)
    dk += matmul(tl.trans(_score_gradient(p, allowed, g, v, delta, PRECISION)), q, PRECISION) * scale
    return dk, dv


@triton.jit(do_not_specialize=["D"])
def attention_key_grad_kernel(q_ptr, k_ptr, v_ptr, key_mask_ptr, grad_ptr, row_max_ptr, row_sum_ptr, delta_ptr,
                              d_k_ptr, d_v_ptr,
                              T, D, HEADS, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
                              BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """dL/dk and dL/dv for a block of keys j, summed over the queries that saw them."""
    sequence = tl.program_id(1).to(tl.int64)
    rows_at = sequence * T * D
    key_mask_ptr += (sequence // HEADS) * T
    row_max_ptr += sequence * T
    row_sum_ptr += sequence * T
    delta_ptr += sequence * T
    j = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    k = _load_rows(k_ptr + rows_at, j, T, D, BLOCK_D)
    v = _load_rows(v_ptr + rows_at, j, T, D, BLOCK_D)
    scale = 1.0 / tl.sqrt(D.to(k.dtype))
    dk = tl.zeros((BLOCK, BLOCK_D), k.dtype)
    dv = tl.zeros((BLOCK, BLOCK_D), k.dtype)
    first = tl.program_id(0) * BLOCK if CAUSAL else 0              # earlier queries cannot see these keys...
    for start in range(first, T, BLOCK):
        dk, dv = _key_grad_block(dk, dv, k, v, j, start, q_ptr + rows_at, grad_ptr + rows_at, row_max_ptr,
                                 row_sum_ptr, delta_ptr, key_mask_ptr, T, D, scale, HAS_MASK, CAUSAL, PRECISION,
                                 BLOCK, BLOCK_D)
    if CAUSAL:
        for start in range(0, first, BLOCK):                        # ...unless they saw no key at all
            i = start + tl.arange(0, BLOCK)
            if tl.min(tl.load(row_max_ptr + i, mask=i < T, other=0.0)) < NO_KEY_SEEN:
                dk, dv = _key_grad_block(dk, dv, k, v, j, start, q_ptr + rows_at, grad_ptr + rows_at, row_max_ptr,
                                         row_sum_ptr, delta_ptr, key_mask_ptr, T, D, scale, HAS_MASK, CAUSAL,
                                         PRECISION, BLOCK, BLOCK_D)
    _store_rows(d_k_ptr + rows_at, j, dk, T, D, BLOCK_D)
    _store_rows(d_v_ptr + rows_at, j, dv, T, D, BLOCK_D)


@triton.jit(do_not_specialize=["D"])
def attention_query_grad_kernel(q_ptr, k_ptr, v_ptr, key_mask_ptr, grad_ptr, row_max_ptr, row_sum_ptr, delta_ptr,
                                d_q_ptr,
                                T, D, HEADS, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
                                BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """dL/dq for a block of queries i. Keys in their future only ever get replaced scores
    (ds = 0), so a causal program stops at the diagonal."""
    sequence = tl.program_id(1).to(tl.int64)
    rows_at = sequence * T * D
    key_mask_ptr += (sequence // HEADS) * T
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    q = _load_rows(q_ptr + rows_at, i, T, D, BLOCK_D)
    g = _load_rows(grad_ptr + rows_at, i, T, D, BLOCK_D)
    m, l = _row_statistics(row_max_ptr + sequence * T, row_sum_ptr + sequence * T, i, T)
    delta = tl.load(delta_ptr + sequence * T + i, mask=i < T, other=0.0)
    scale = 1.0 / tl.sqrt(D.to(q.dtype))
    dq = tl.zeros((BLOCK, BLOCK_D), q.dtype)
    for start in range(0, (tl.program_id(0) + 1) * BLOCK if CAUSAL else T, BLOCK):
        j = start + tl.arange(0, BLOCK)
        k = _load_rows(k_ptr + rows_at, j, T, D, BLOCK_D)
        p, allowed = _probabilities(q, k, m, l, i, j, key_mask_ptr, T, scale, HAS_MASK, CAUSAL, PRECISION)
        v = _load_rows(v_ptr + rows_at, j, T, D, BLOCK_D)
        dq += matmul(_score_gradient(p, allowed, g, v, delta, PRECISION), k, PRECISION) * scale
    _store_rows(d_q_ptr + rows_at, i, dq, T, D, BLOCK_D)


def launch_config(dtype, B, heads, T, D, mask, causal, dot=None):
    """How every kernel here runs on B·heads sequences of T rows of width D: (grid, constexprs,
    options), for the product's precision ``dot`` (default: ``matmul.precision(dtype)``). One
    BLOCK for queries and keys, so a causal program's diagonal falls on a block edge.
    ``compile_check`` compiles this."""
    dot = dot or precision(dtype)
    block_d = max(triton.next_power_of_2(D), 1 if dot == "float64" else 16)
    if dot == "float64":
        block = 16
        while block > 1 and block * block * block_d > FLOAT64_TILE:
            block //= 2
    else:
        block = (32 if dot == "tf32" else 16) // (2 if block_d > 64 else 1)
    block = max(min(block, triton.next_power_of_2(T)), 1 if dot == "float64" else 16)
    constexprs = dict(HAS_MASK=mask, CAUSAL=causal, PRECISION=dot, BLOCK=block, BLOCK_D=block_d)
    return (triton.cdiv(T, block), B * heads), constexprs, dict(num_warps=4)


def _launch(kernel, q, mask, causal, *args):
    check_launchable(q)
    B, heads, T, D = q.shape
    grid, constexprs, options = launch_config(q.dtype, B, heads, T, D, mask is not None, causal)
    kernel[grid](*args, T, D, heads, **constexprs, **options)


def _key_mask(q, mask):
    """The mask as a contiguous array of q's dtype, or q itself as a never-read placeholder."""
    return q if mask is None else mask.to(q.dtype).contiguous()


def attention_forward(q, k, v, mask, causal):
    """q, k, v (B, h, T, d), mask (B, T) or None -> out (B, h, T, d) and each row's softmax
    statistics m, l (B, h, T): its largest score and Σ_j e^(s_ij − m_i)."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out, row_max, row_sum = torch.empty_like(q), q.new_empty(q.shape[:-1]), q.new_empty(q.shape[:-1])
    _launch(attention_forward_kernel, q, mask, causal, q, k, v, _key_mask(q, mask), out, row_max, row_sum)
    return out, row_max, row_sum


def attention_backward(grad, q, k, v, mask, causal, out, row_max, row_sum):
    """-> dL/dq, dL/dk, dL/dv, each (B, h, T, d). The kernels read and write contiguous rows, so the inputs
    are made contiguous here too (the forward saw contiguous copies, the backward was handed the views)."""
    grad, q, k, v = grad.contiguous(), q.contiguous(), k.contiguous(), v.contiguous()
    delta = (grad * out).sum(-1)                                   # Δ_i = g_i · out_i   (B, h, T)
    d_q, d_k, d_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    key_mask = _key_mask(q, mask)
    statistics = (row_max, row_sum, delta)
    _launch(attention_key_grad_kernel, q, mask, causal, q, k, v, key_mask, grad, *statistics, d_k, d_v)
    _launch(attention_query_grad_kernel, q, mask, causal, q, k, v, key_mask, grad, *statistics, d_q)
    return d_q, d_k, d_v

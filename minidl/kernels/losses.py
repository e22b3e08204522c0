"""Softmax cross-entropy and the distillation loss: one pass over the logits writes each
row's loss AND its gradient.

Shapes: N rows (every position of the logits but the last axis), C classes; logits
z (N, C), targets y (N,) ints. Each program takes a tile of BLOCK_N whole rows
(BLOCK_C ≥ C columns, the padding columns read as −1e30), so every logit is read once:

    log p = z − m − log Σ_c exp(z_c − m),    m = max_c z_c
    loss  = −log p[y]
    grad  = p − onehot(y)                         = d loss / d z

The distillation loss (``minidl.compress.distill``) on student logits s and teacher
logits t, with p_T = softmax(s/T), q_T = softmax(t/T):

    loss = α·(−log p[y]) + (1 − α)·T²·Σ_c q_T (log q_T − log p_T)               kind "kl"
    loss = α·(−log p[y]) + (1 − α)·Σ_c (s − t)² / C                              kind "mse"
    grad = [α·(p − onehot(y)) + (1 − α)·T·(p_T − q_T)] / N                       kind "kl"
    grad = [α·(p − onehot(y)) + (1 − α)·2(s − t)/C] / N                          kind "mse"

The gradient is that of the loss for an upstream gradient of 1 (for the distillation
loss, of the batch mean); the Function's backward only multiplies it by the upstream
gradient, so no logit is read twice. α and T travel in a tensor of the logits' dtype:
Triton would pass Python floats as float32, and float64 results must be exact.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_launchable

MAX_TILE = 2048  # elements per program for short rows; a long row is one program on its own


@triton.jit
def _log_softmax(z):
    """Row-wise log-softmax of a (BLOCK_N, BLOCK_C) tile (padding columns −1e30: they get p = 0)."""
    shifted = z - tl.max(z, axis=1)[:, None]
    return shifted - tl.log(tl.sum(tl.exp(shifted), axis=1))[:, None]


@triton.jit
def _load_rows(ptr, rows, cols, N, C):
    """The tile z[rows, cols]; columns past C read as −1e30, a finite −∞: they vanish from
    every softmax, and log q − log p stays finite there (true −∞ would give 0·NaN in the KL
    sum). Rows past N read as 0, so they stay finite too; they are never stored."""
    inside = (rows[:, None] < N) & (cols[None, :] < C)
    z = tl.load(ptr + rows[:, None] * C + cols[None, :], mask=inside, other=0.0)
    return tl.where(cols[None, :] < C, z, -1e30)


@triton.jit
def cross_entropy_kernel(logits_ptr, targets_ptr, loss_ptr, grad_ptr, N, C,
                         BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_C)
    log_p = _log_softmax(_load_rows(logits_ptr, rows, cols, N, C))
    y = tl.load(targets_ptr + rows, mask=rows < N, other=0)
    onehot = cols[None, :] == y[:, None]
    loss = -tl.sum(tl.where(onehot, log_p, 0.0), axis=1)
    grad = tl.exp(log_p) - onehot.to(log_p.dtype)
    tl.store(loss_ptr + rows, loss, mask=rows < N)
    tl.store(grad_ptr + rows[:, None] * C + cols[None, :], grad, mask=(rows[:, None] < N) & (cols[None, :] < C))


@triton.jit
def distillation_kernel(student_ptr, teacher_ptr, targets_ptr, settings_ptr, loss_ptr, grad_ptr, N, C,
                        KL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_C)
    alpha, temperature = tl.load(settings_ptr), tl.load(settings_ptr + 1)
    inside = (rows[:, None] < N) & (cols[None, :] < C)
    s = _load_rows(student_ptr, rows, cols, N, C)
    log_p = _log_softmax(s)
    y = tl.load(targets_ptr + rows, mask=rows < N, other=0)
    onehot = cols[None, :] == y[:, None]
    hard = -tl.sum(tl.where(onehot, log_p, 0.0), axis=1)
    d_hard = tl.exp(log_p) - onehot.to(log_p.dtype)
    if KL:
        log_p_T = _log_softmax(s / temperature)
        log_q_T = _log_softmax(_load_rows(teacher_ptr, rows, cols, N, C) / temperature)
        q_T = tl.exp(log_q_T)
        soft = tl.sum(q_T * (log_q_T - log_p_T), axis=1) * temperature * temperature
        d_soft = temperature * (tl.exp(log_p_T) - q_T)
    else:
        difference = tl.where(inside, s - _load_rows(teacher_ptr, rows, cols, N, C), 0.0)
        soft = tl.sum(difference * difference, axis=1) / C
        d_soft = 2.0 * difference / C
    tl.store(loss_ptr + rows, alpha * hard + (1.0 - alpha) * soft, mask=rows < N)
    grad = (alpha * d_hard + (1.0 - alpha) * d_soft) / N
    tl.store(grad_ptr + rows[:, None] * C + cols[None, :], grad, mask=inside)


def launch_config(N, C):
    """How every kernel here runs on N rows of C classes: (grid, constexprs, options).
    ``compile_check`` compiles this."""
    block_c = triton.next_power_of_2(C)
    block_n = min(max(MAX_TILE // block_c, 1), triton.next_power_of_2(max(N, 1)))
    # about 8 elements per thread: a memory-bound pass wants many warps, each with few registers
    num_warps = min(16, max(4, block_n * block_c // 256))
    return (triton.cdiv(N, block_n),), dict(BLOCK_N=block_n, BLOCK_C=block_c), dict(num_warps=num_warps)


def _launch(kernel, logits, *args, **constants):
    """Run ``kernel`` over the (N, C) rows of ``logits``; returns the row losses (N,) and the gradient (N, C)."""
    check_launchable(logits)
    N, C = logits.shape
    loss = torch.empty(N, dtype=logits.dtype, device=logits.device)
    grad = torch.empty_like(logits)
    grid, constexprs, options = launch_config(N, C)
    kernel[grid](logits, *args, loss, grad, N, C, **constants, **constexprs, **options)
    return loss, grad


def cross_entropy_forward(logits, targets):
    """logits (..., C), targets (...) ints -> loss (...) = −log softmax(z)[y] and grad (..., C) = p − onehot(y)."""
    rows = logits.reshape(-1, logits.shape[-1]).contiguous()
    loss, grad = _launch(cross_entropy_kernel, rows, targets.reshape(-1).contiguous())
    return loss.reshape(targets.shape), grad.reshape(logits.shape)


def distillation_forward(student, teacher, targets, alpha, temperature, kind):
    """student, teacher (N, C), targets (N,) -> row losses (N,) and d(mean loss)/d student (N, C)."""
    settings = torch.tensor([alpha, temperature], dtype=student.dtype, device=student.device)
    return _launch(distillation_kernel, student.contiguous(), teacher.contiguous(), targets.contiguous(), settings,
                   KL=kind == "kl")

"""Persistent Elman RNN and GRU kernels: the whole sequence in one launch.

Shapes as in ``minidl.autograd.ops.recurrent``: B batch, T time, H hidden; x_proj (B, T, H)
for the RNN and (B, T, 3H) = [xz | xr | xh] for the GRU, the input projections of every
step computed before (one matmul). Each program owns a block of BLOCK_B batch rows: it
loads the hidden-to-hidden weights once, keeps its state h (BLOCK_B, H) on chip, and runs
the loop over t itself, so the only memory traffic per step is x_proj[:, t] in and the
saved states out.

Forward (the course's equations, row vectors):

    RNN   h_t = f(x_proj_t + h_{t-1} U)                      f = relu or tanh
    GRU   z_t = σ(xz_t + h_{t-1} U_z),  r_t = σ(xr_t + h_{t-1} U_r)
          h̃_t = tanh(xh_t + (r_t ⊙ h_{t-1}) U_h)
          h_t = h_{t-1} + z_t ⊙ (h̃_t − h_{t-1})

Backward through time is the same loop in reverse, carrying dh = dL/dh_t:

    RNN   d_pre_t = (dh + g_t) ⊙ f'(h_t);           dh ← d_pre_t Uᵀ
    GRU   d_pre_h = dh ⊙ z ⊙ (1 − h̃²);  d_rh = d_pre_h U_hᵀ
          d_pre_z = dh ⊙ (h̃ − h_prev) ⊙ z(1 − z);  d_pre_r = d_rh ⊙ h_prev ⊙ r(1 − r)
          dh ← dh ⊙ (1 − z) + d_rh ⊙ r + d_pre_z U_zᵀ + d_pre_r U_rᵀ

The kernels write d_pre = dL/dx_proj for every step and dL/dh0; the weight gradients
(Σ over b and t of h_prevᵀ d_pre) are then ONE matrix product over all B·T rows, as in
the reference path: a large GEMM uses the whole GPU, a per-program accumulator would not.

Where the weights stay: Triton keeps a loop-invariant ``tl.dot`` operand in shared memory,
so "loaded once" needs (number of H×H blocks)·BLOCK_H²·4 bytes of it: 192 KiB for the GRU
at H = 128, which fits a Hopper GPU (227 KiB per block) but not an A100 (163 KiB), where
Triton stops the launch with "out of resource: shared memory" (use H ≤ 64 there, or
``kernels.set_mode("reference")``). ``num_stages=1`` keeps the loop's loads from taking
more of it for software pipelining.

Matrix products (``matmul.py``): float32 uses ``tl.dot``, in full float32 ("ieee") or on
tensor cores ("tf32", after ``torch.set_float32_matmul_precision("high")``); it needs every
block dimension ≥ 16: BLOCK_B is 16 and BLOCK_H the next power of two ≥ max(H, 16), the
padding masked to zero (a zero column of h stays zero through both recurrences). float64
(gradient checks) uses a broadcast product summed over K instead, which keeps a
(BLOCK_B, BLOCK_H, BLOCK_H) tile, so its BLOCK_B shrinks as H grows: correct, not fast.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import check_launchable
from .matmul import matmul, precision


@triton.jit
def _tanh(x):
    # tanh(x) = 2σ(2x) − 1: libdevice's tanh is not available in Triton's interpreter
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def _load_weight(ptr, stride, H, BLOCK_H: tl.constexpr, TRANSPOSE: tl.constexpr):
    """The (H, H) block at ``ptr`` of a weight whose rows are ``stride`` apart, or its transpose,
    as a (BLOCK_H, BLOCK_H) tile, zero-padded."""
    rows = tl.arange(0, BLOCK_H)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    if TRANSPOSE:
        rows, cols = cols, rows
    return tl.load(ptr + rows * stride + cols, mask=(rows < H) & (cols < H), other=0.0)


@triton.jit
def _gru_weights(U_zr_ptr, U_h_ptr, H, BLOCK_H: tl.constexpr, TRANSPOSE: tl.constexpr):
    """U_z, U_r, U_h (or their transposes) from U_zr = [U_z | U_r] (H, 2H) and U_h (H, H)."""
    return (_load_weight(U_zr_ptr, 2 * H, H, BLOCK_H, TRANSPOSE),
            _load_weight(U_zr_ptr + H, 2 * H, H, BLOCK_H, TRANSPOSE),
            _load_weight(U_h_ptr, H, H, BLOCK_H, TRANSPOSE))


@triton.jit
def _rows(B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """This program's batch rows b (BLOCK_B,), the hidden units j (BLOCK_H,), and which (b, j) exist."""
    b = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    j = tl.arange(0, BLOCK_H)
    return b, j, (b[:, None] < B) & (j[None, :] < H)


@triton.jit
def _at(b, j, t, T, width):
    """Offsets of the (BLOCK_B, BLOCK_H) slab [b, t, j] of a (B, T, width) array."""
    return b[:, None] * T * width + t * width + j[None, :]


@triton.jit
def elman_rnn_forward_kernel(x_proj_ptr, h0_ptr, U_ptr, hs_ptr, B, T, H, RELU: tl.constexpr,
                             PRECISION: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    b, j, inside = _rows(B, H, BLOCK_B, BLOCK_H)
    U = _load_weight(U_ptr, H, H, BLOCK_H, False)
    h = tl.load(h0_ptr + b[:, None] * H + j[None, :], mask=inside, other=0.0)
    for t in range(T):
        step = _at(b, j, t, T, H)
        pre = tl.load(x_proj_ptr + step, mask=inside, other=0.0) + matmul(h, U, PRECISION)
        h = tl.maximum(pre, 0.0) if RELU else _tanh(pre)
        tl.store(hs_ptr + step, h, mask=inside)


@triton.jit
def elman_rnn_backward_kernel(grad_hs_ptr, hs_ptr, U_ptr, d_pre_ptr, d_h0_ptr, B, T, H, RELU: tl.constexpr,
                              PRECISION: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    b, j, inside = _rows(B, H, BLOCK_B, BLOCK_H)
    U_T = _load_weight(U_ptr, H, H, BLOCK_H, True)
    dh = tl.zeros((BLOCK_B, BLOCK_H), dtype=hs_ptr.dtype.element_ty)  # dL/dh_t arriving from step t + 1
    for s in range(T):
        step = _at(b, j, T - 1 - s, T, H)
        dh += tl.load(grad_hs_ptr + step, mask=inside, other=0.0)
        h = tl.load(hs_ptr + step, mask=inside, other=0.0)
        d_pre = dh * (tl.where(h > 0, 1.0, 0.0) if RELU else 1.0 - h * h)  # relu' from the output: h > 0 ⇔ pre > 0
        tl.store(d_pre_ptr + step, d_pre, mask=inside)
        dh = matmul(d_pre, U_T, PRECISION)
    tl.store(d_h0_ptr + b[:, None] * H + j[None, :], dh, mask=inside)


@triton.jit
def gru_forward_kernel(x_proj_ptr, h0_ptr, U_zr_ptr, U_h_ptr, hs_ptr, zs_ptr, rs_ptr, h_tildes_ptr, B, T, H,
                       PRECISION: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    b, j, inside = _rows(B, H, BLOCK_B, BLOCK_H)
    U_z, U_r, U_h = _gru_weights(U_zr_ptr, U_h_ptr, H, BLOCK_H, False)
    h = tl.load(h0_ptr + b[:, None] * H + j[None, :], mask=inside, other=0.0)
    for t in range(T):
        x_t = x_proj_ptr + _at(b, j, t, T, 3 * H)              # x_proj_t = [xz | xr | xh]
        z = tl.sigmoid(tl.load(x_t, mask=inside, other=0.0) + matmul(h, U_z, PRECISION))
        r = tl.sigmoid(tl.load(x_t + H, mask=inside, other=0.0) + matmul(h, U_r, PRECISION))
        h_tilde = _tanh(tl.load(x_t + 2 * H, mask=inside, other=0.0) + matmul(r * h, U_h, PRECISION))
        h = h + z * (h_tilde - h)
        step = _at(b, j, t, T, H)
        tl.store(hs_ptr + step, h, mask=inside)
        tl.store(zs_ptr + step, z, mask=inside)
        tl.store(rs_ptr + step, r, mask=inside)
        tl.store(h_tildes_ptr + step, h_tilde, mask=inside)


@triton.jit
def gru_backward_kernel(grad_hs_ptr, h_prevs_ptr, zs_ptr, rs_ptr, h_tildes_ptr, U_zr_ptr, U_h_ptr, d_x_ptr, d_h0_ptr,
                        B, T, H, PRECISION: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    b, j, inside = _rows(B, H, BLOCK_B, BLOCK_H)
    U_z_T, U_r_T, U_h_T = _gru_weights(U_zr_ptr, U_h_ptr, H, BLOCK_H, True)
    dh = tl.zeros((BLOCK_B, BLOCK_H), dtype=zs_ptr.dtype.element_ty)
    for s in range(T):
        t = T - 1 - s
        step = _at(b, j, t, T, H)
        dh += tl.load(grad_hs_ptr + step, mask=inside, other=0.0)
        z = tl.load(zs_ptr + step, mask=inside, other=0.0)
        r = tl.load(rs_ptr + step, mask=inside, other=0.0)
        h_tilde = tl.load(h_tildes_ptr + step, mask=inside, other=0.0)
        h_prev = tl.load(h_prevs_ptr + step, mask=inside, other=0.0)
        d_pre_h = dh * z * (1.0 - h_tilde * h_tilde)           # through h̃ = tanh(pre_h)
        d_rh = matmul(d_pre_h, U_h_T, PRECISION)                # pre_h = xh + (r ⊙ h_prev) U_h
        d_pre_z = dh * (h_tilde - h_prev) * z * (1.0 - z)
        d_pre_r = d_rh * h_prev * r * (1.0 - r)
        d_x_t = d_x_ptr + _at(b, j, t, T, 3 * H)
        tl.store(d_x_t, d_pre_z, mask=inside)
        tl.store(d_x_t + H, d_pre_r, mask=inside)
        tl.store(d_x_t + 2 * H, d_pre_h, mask=inside)
        # h_prev reaches h directly, through r ⊙ h_prev, and through both gates
        dh = dh * (1.0 - z) + d_rh * r + matmul(d_pre_z, U_z_T, PRECISION) + matmul(d_pre_r, U_r_T, PRECISION)
    tl.store(d_h0_ptr + b[:, None] * H + j[None, :], dh, mask=inside)


def launch_config(dtype, B, H, dot=None):
    """How every kernel here runs on B rows of H hidden units: (grid, constexprs, options), the
    block sizes chosen for the product's precision ``dot`` (default: ``matmul.precision(dtype)``;
    see the module docstring). ``compile_check`` compiles this."""
    dot = dot or precision(dtype)
    use_dot = dot != "float64"
    block_h = max(triton.next_power_of_2(H), 16 if use_dot else 1)
    block_b = 16 if use_dot else max(1, min(16, 8192 // (block_h * block_h)))
    return ((triton.cdiv(B, block_b),), dict(PRECISION=dot, BLOCK_B=block_b, BLOCK_H=block_h),
            dict(num_warps=4 if block_h <= 64 else 8, num_stages=1))


def _launch(kernel, dtype, B, H, *args):
    """Run ``kernel`` on cdiv(B, BLOCK_B) programs."""
    check_launchable(args[0])
    grid, constexprs, options = launch_config(dtype, B, H)
    kernel[grid](*args, **constexprs, **options)


def _weight_gradient(inputs, d_pre):
    """Σ_{b,t} inputs[b, t]ᵀ d_pre[b, t]: (B, T, H), (B, T, K) -> (H, K), one matrix product."""
    return inputs.reshape(-1, inputs.shape[-1]).T @ d_pre.reshape(-1, d_pre.shape[-1])


def _previous_states(h0, hs):
    return torch.cat([h0[:, None], hs[:, :-1]], dim=1)[:, :hs.shape[1]]   # none for T = 0; else contiguous, as read


def elman_rnn_forward(x_proj, h0, U, nonlinearity):
    """x_proj (B, T, H), h0 (B, H), U (H, H) -> hs (B, T, H)."""
    x_proj, h0, U = x_proj.contiguous(), h0.contiguous(), U.contiguous()
    B, T, H = x_proj.shape
    hs = torch.empty_like(x_proj)
    _launch(elman_rnn_forward_kernel, x_proj.dtype, B, H, x_proj, h0, U, hs, B, T, H, nonlinearity == "relu")
    return hs


def elman_rnn_backward(grad_hs, h0, U, hs, nonlinearity):
    """-> dL/dx_proj (B, T, H), dL/dh0 (B, H), dL/dU (H, H); h0 contiguous, as in the forward (dL/dh0 of a
    transposed h0 was written in a contiguous layout into a buffer with the view's strides)."""
    grad_hs, h0, U = grad_hs.contiguous(), h0.contiguous(), U.contiguous()
    B, T, H = hs.shape
    d_pre, d_h0 = torch.empty_like(hs), torch.empty_like(h0)
    _launch(elman_rnn_backward_kernel, hs.dtype, B, H, grad_hs, hs, U, d_pre, d_h0, B, T, H, nonlinearity == "relu")
    return d_pre, d_h0, _weight_gradient(_previous_states(h0, hs), d_pre)


def gru_forward(x_proj, h0, U_zr, U_h):
    """x_proj (B, T, 3H), h0 (B, H), U_zr (H, 2H), U_h (H, H) -> hs, zs, rs, h_tildes, each (B, T, H)."""
    x_proj, h0, U_zr, U_h = x_proj.contiguous(), h0.contiguous(), U_zr.contiguous(), U_h.contiguous()
    B, T, H = h0.shape[0], x_proj.shape[1], h0.shape[1]
    hs, zs, rs, h_tildes = (x_proj.new_empty((B, T, H)) for _ in range(4))
    _launch(gru_forward_kernel, x_proj.dtype, B, H, x_proj, h0, U_zr, U_h, hs, zs, rs, h_tildes, B, T, H)
    return hs, zs, rs, h_tildes


def gru_backward(grad_hs, h0, U_zr, U_h, hs, zs, rs, h_tildes):
    """-> dL/dx_proj (B, T, 3H), dL/dh0 (B, H), dL/dU_zr (H, 2H), dL/dU_h (H, H); h0 contiguous (see Elman's)."""
    grad_hs, h0, U_zr, U_h = grad_hs.contiguous(), h0.contiguous(), U_zr.contiguous(), U_h.contiguous()
    B, T, H = hs.shape
    h_prevs = _previous_states(h0, hs)
    d_x, d_h0 = hs.new_empty((B, T, 3 * H)), torch.empty_like(h0)
    _launch(gru_backward_kernel, hs.dtype, B, H, grad_hs, h_prevs, zs, rs, h_tildes, U_zr, U_h, d_x, d_h0, B, T, H)
    return d_x, d_h0, _weight_gradient(h_prevs, d_x[..., :2 * H]), _weight_gradient(rs * h_prevs, d_x[..., 2 * H:])

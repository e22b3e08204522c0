"""Fused recurrences: a whole Elman RNN or GRU sequence as ONE graph node.

Written step by step with minidl's primitive ops, a GRU over T = 100 words would add
some 1,500 nodes to the graph. Here the forward loop runs on plain backend arrays, saves
what the backward needs, and the backward is back-propagation through time written out
by hand. On CUDA tensors both run as persistent Triton kernels instead (``minidl.kernels``,
same equations, same saved arrays). The input projections of all steps are computed
before the loop as one matmul (``x_proj = X @ W_x + b``, by ordinary ops), so the loop
only does the hidden-to-hidden products.

Row-vector convention (``x @ W``), shapes with B = batch, T = time, H = hidden size:

Elman RNN (course: ReLU; tanh as an option)
    pre_t = x_proj_t + h_{t-1} @ U               x_proj: (B, T, H), U: (H, H)
    h_t   = relu(pre_t)

GRU, the course's equations (r multiplies h BEFORE the matrix, unlike torch.nn.GRU)
    z_t       = σ(xz_t + h_{t-1} @ U_z)           x_proj = [xz | xr | xh]: (B, T, 3H)
    r_t       = σ(xr_t + h_{t-1} @ U_r)           U_zr = [U_z | U_r]: (H, 2H)
    h̃_t       = tanh(xh_t + (r_t ⊙ h_{t-1}) @ U_h)  U_h: (H, H)
    h_t       = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

Both return every hidden state, (B, T, H); a classifier then picks the state at each
review's last real word (padding comes after it, so it never changes that state).
"""
from __future__ import annotations

from ... import kernels
from ..function import Function, OpError, ShapeError


def _check(name, xp, x_proj, h0, gates, hidden_weights):
    """hidden_weights: [(U, k)], U of shape (H, k·H). The whole shapes and one dtype: the Triton
    kernels read U by its expected shape, past its end for a narrower one, and take no mixed dtypes."""
    B, T, width = x_proj.shape
    H = h0.shape[-1]
    expected = [(H, k * H) for _, k in hidden_weights]
    if width != gates * H or tuple(h0.shape) != (B, H) or [tuple(U.shape) for U, _ in hidden_weights] != expected:
        raise ShapeError(f"{name}: expected x_proj (B, T, {gates}·H), h0 (B, H) and hidden weights "
                         f"{', '.join(f'(H, {k}·H)' if k > 1 else '(H, H)' for _, k in hidden_weights)}; got "
                         f"x_proj {tuple(x_proj.shape)}, h0 {tuple(h0.shape)}, "
                         + ", ".join(str(tuple(U.shape)) for U, _ in hidden_weights))
    dtypes = [xp.dtype_name(a) for a in (x_proj, h0, *(U for U, _ in hidden_weights))]
    if len(set(dtypes)) > 1:
        raise OpError(f"{name}: x_proj, h0 and the hidden weights must have one dtype, got {', '.join(dtypes)}; "
                      f"convert them with .to(dtype=...)")
    return B, T, H


def _flat(a):
    """(B, T, K) -> (B·T, K): lets one matmul sum a weight gradient over every step."""
    return a.reshape(-1, a.shape[-1])


class ElmanRNN(Function):
    @staticmethod
    def forward(ctx, x_proj, h0, U, nonlinearity):
        xp = ctx.xp
        B, T, H = _check("elman_rnn", xp, x_proj, h0, 1, [(U, 1)])
        if nonlinearity not in ("relu", "tanh"):
            raise OpError(f'elman_rnn: nonlinearity must be "relu" or "tanh", got {nonlinearity!r}')
        ctx.nonlinearity, ctx.kernel = nonlinearity, kernels.use_kernel(x_proj)
        if ctx.kernel:
            hs = kernels.elman_rnn_forward(x_proj, h0, U, nonlinearity)
            ctx.save_for_backward(h0, U, hs)
            return hs
        hs = xp.zeros((B, T, H), xp.dtype_name(x_proj))
        h = h0
        for t in range(T):
            pre = x_proj[:, t] + h @ U
            h = xp.maximum(pre, 0.0) if nonlinearity == "relu" else xp.tanh(pre)
            hs[:, t] = h
        ctx.save_for_backward(h0, U, hs)
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        xp = ctx.xp
        h0, U, hs = ctx.saved
        if ctx.kernel:
            return (*kernels.elman_rnn_backward(grad_hs, h0, U, hs, ctx.nonlinearity), None)
        T = hs.shape[1]
        d_pre = xp.zeros(hs.shape, xp.dtype_name(hs))
        U_T = xp.swap_last(U)
        dh = xp.zeros_like(h0)  # dL/dh_t arriving from step t+1
        for t in range(T - 1, -1, -1):
            dh = dh + grad_hs[:, t]
            h = hs[:, t]
            local = (h > 0) if ctx.nonlinearity == "relu" else (1 - h * h)  # relu' from the output: h > 0 ⇔ pre > 0
            d_pre[:, t] = dh * local
            dh = d_pre[:, t] @ U_T
        h_prev = _previous_states(xp, h0, hs)
        d_U = xp.swap_last(_flat(h_prev)) @ _flat(d_pre)
        return d_pre, dh, d_U, None


class GRU(Function):
    @staticmethod
    def forward(ctx, x_proj, h0, U_zr, U_h):
        xp = ctx.xp
        B, T, H = _check("gru", xp, x_proj, h0, 3, [(U_zr, 2), (U_h, 1)])
        ctx.kernel = kernels.use_kernel(x_proj)
        if ctx.kernel:
            hs, zs, rs, h_tildes = kernels.gru_forward(x_proj, h0, U_zr, U_h)
            ctx.save_for_backward(h0, U_zr, U_h, hs, zs, rs, h_tildes)
            return hs
        dtype = xp.dtype_name(x_proj)
        hs, zs, rs, h_tildes = (xp.zeros((B, T, H), dtype) for _ in range(4))
        h = h0
        for t in range(T):
            x_t = x_proj[:, t]
            zr = xp.sigmoid(x_t[:, :2 * H] + h @ U_zr)
            z, r = zr[:, :H], zr[:, H:]
            h_tilde = xp.tanh(x_t[:, 2 * H:] + (r * h) @ U_h)
            h = h + z * (h_tilde - h)  # = (1 − z) ⊙ h + z ⊙ h̃
            hs[:, t], zs[:, t], rs[:, t], h_tildes[:, t] = h, z, r, h_tilde
        ctx.save_for_backward(h0, U_zr, U_h, hs, zs, rs, h_tildes)
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        xp = ctx.xp
        if ctx.kernel:
            return kernels.gru_backward(grad_hs, *ctx.saved)
        h0, U_zr, U_h, hs, zs, rs, h_tildes = ctx.saved
        B, T, H = hs.shape
        d_x = xp.zeros((B, T, 3 * H), xp.dtype_name(hs))  # = dL/d[pre_z | pre_r | pre_h] per step
        U_zr_T, U_h_T = xp.swap_last(U_zr), xp.swap_last(U_h)
        h_prevs = _previous_states(xp, h0, hs)
        dh = xp.zeros_like(h0)
        for t in range(T - 1, -1, -1):
            dh = dh + grad_hs[:, t]
            z, r, h_tilde, h_prev = zs[:, t], rs[:, t], h_tildes[:, t], h_prevs[:, t]
            # h = (1 − z) ⊙ h_prev + z ⊙ h̃
            d_pre_h = dh * z * (1 - h_tilde * h_tilde)          # through h̃ = tanh(pre_h)
            d_rh = d_pre_h @ U_h_T                             # pre_h = xh + (r ⊙ h_prev) @ U_h
            d_pre_z = dh * (h_tilde - h_prev) * z * (1 - z)    # σ' = z(1 − z)
            d_pre_r = d_rh * h_prev * r * (1 - r)
            d_x[:, t, :H], d_x[:, t, H:2 * H], d_x[:, t, 2 * H:] = d_pre_z, d_pre_r, d_pre_h
            # h_prev reaches h directly, through r ⊙ h_prev, and through both gates
            dh = dh * (1 - z) + d_rh * r + d_x[:, t, :2 * H] @ U_zr_T
        d_U_zr = xp.swap_last(_flat(h_prevs)) @ _flat(d_x[:, :, :2 * H])
        d_U_h = xp.swap_last(_flat(rs * h_prevs)) @ _flat(d_x[:, :, 2 * H:])
        return d_x, dh, d_U_zr, d_U_h


def _previous_states(xp, h0, hs):
    """(B, T, H) states h_{t-1} for t = 0..T-1: h0 followed by hs without its last step (none for T = 0)."""
    return xp.concat([h0[:, None], hs[:, :-1]], axis=1)[:, :hs.shape[1]]


def elman_rnn(x_proj, h0, U, nonlinearity="relu"):
    """All hidden states (B, T, H) of an Elman RNN; see the module docstring."""
    return ElmanRNN.apply(x_proj, h0, U, nonlinearity)


def gru(x_proj, h0, U_zr, U_h):
    """All hidden states (B, T, H) of the course's GRU; see the module docstring."""
    return GRU.apply(x_proj, h0, U_zr, U_h)

"""Ops behind the basic layers: embedding lookup, dropout and layer normalisation."""
from __future__ import annotations

import operator

from ..function import Function, OpError


class Embedding(Function):
    """out[..., :] = W[ids[...], :];  dL/dW[v] = Σ over positions with id v of dL/dout.

    weight W: (V, E), ids: any shape (...) of ints -> out: (..., E). The row at
    ``padding_idx`` gets no gradient, so padding never learns.
    """

    @staticmethod
    def forward(ctx, weight, ids, padding_idx):
        xp = ctx.xp
        num_rows = weight.shape[0]
        if not xp.dtype_name(ids).startswith(("int", "uint")):
            if xp.dtype_name(weight).startswith(("int", "uint")):   # torch's F.embedding(ids, weight) order
                raise OpError(f"embedding: the arguments are (weight, ids), got {xp.dtype_name(weight)} first and "
                              f"{xp.dtype_name(ids)} second (PyTorch's order is (ids, weight)); call "
                              f"md.embedding(weight, ids)")
            raise OpError(f"embedding: ids are row numbers (ints), got {xp.dtype_name(ids)}; e.g. "
                          f"md.tensor(ids, dtype=\"int64\")")
        if xp.size(ids) and (int(ids.min()) < 0 or int(ids.max()) >= num_rows):
            raise OpError(f"embedding: ids must lie in [0, {num_rows}) for a table of {num_rows} rows, "
                             f"got values from {int(ids.min())} to {int(ids.max())}; map unknown words to <unk>")
        ctx.save_for_backward(ids)
        ctx.shape, ctx.dtype, ctx.padding_idx = weight.shape, xp.dtype_name(weight), padding_idx
        return weight[ids]

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved
        xp = ctx.xp
        d_weight = xp.zeros(ctx.shape, ctx.dtype)
        xp.add_rows(d_weight, ids.reshape(-1), grad.reshape(-1, ctx.shape[1]))
        if ctx.padding_idx is not None:
            d_weight[ctx.padding_idx] = 0
        return d_weight, None, None


class Dropout(Function):
    """Inverted dropout: keep each value with probability 1−p and scale it by 1/(1−p),
    so the expected activation is unchanged and evaluation needs no rescaling. The
    multiplier, 1/(1−p) where a value is kept and 0 where it is dropped, is drawn from
    ``generator`` (None: the backend's seeded one)."""

    @staticmethod
    def forward(ctx, x, p, generator):
        xp = ctx.xp
        if p >= 1:
            scale = xp.zeros(x.shape, xp.dtype_name(x))
        else:
            scale = xp.ge_(xp.rand(x.shape, xp.dtype_name(x), generator), p)   # 1.0 kept, 0.0 dropped, in place
            scale *= 1.0 / (1.0 - p)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved
        return grad * scale, None, None


class LayerNorm(Function):
    """Normalise the last axis (size E), then scale and shift.

        x̂ = (x − μ) / √(σ² + eps),   out = γ ⊙ x̂ + β          x: (..., E), γ, β: (E,)
        dL/dx = (1/√(σ² + eps)) · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)),   ĝ = γ ⊙ dL/dout
        dL/dγ = Σ dL/dout ⊙ x̂,  dL/dβ = Σ dL/dout  (sums over the leading axes: the engine's unbroadcast)
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xp = ctx.xp
        x_hat = x - xp.sum(x, axis=-1, keepdims=True) / x.shape[-1]             # centred, then scaled in place
        inv_std = 1.0 / xp.sqrt(xp.sum(x_hat * x_hat, axis=-1, keepdims=True) / x.shape[-1] + eps)
        x_hat *= inv_std
        ctx.save_for_backward(x_hat, inv_std, weight)
        recording = any(ctx.needs_input_grad)           # else x̂ is not kept: the output overwrites it
        if weight is None:
            return x_hat if bias is None else (x_hat + bias if recording else operator.iadd(x_hat, bias))
        out = x_hat * weight if recording else operator.imul(x_hat, weight)
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x_hat, inv_std, weight = ctx.saved
        xp = ctx.xp
        n = x_hat.shape[-1]
        g_hat = grad if weight is None else grad * weight
        d_x = x_hat * (xp.sum(g_hat * x_hat, axis=-1, keepdims=True) / -n)      # built in place from here
        d_x += g_hat
        d_x -= xp.sum(g_hat, axis=-1, keepdims=True) / n
        d_x *= inv_std
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        return (d_x if need_x else None), (grad * x_hat if need_w else None), (grad if need_b else None), None


def embedding(weight, ids, padding_idx=None):
    if not hasattr(ids, "_ctx"):
        ids = weight.xp.asarray(ids)
    return Embedding.apply(weight, ids, padding_idx)


def dropout(x, p=0.5, training=True, generator=None):
    if not 0.0 <= p <= 1.0:
        raise OpError(f"dropout: p is a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p, generator)


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    if not eps >= 0:                                   # a negative one makes σ² + eps < 0: NaN rows, silently
        raise OpError(f"layer_norm: eps is added to the variance and must be >= 0 (default 1e-5), got {eps}")
    return LayerNorm.apply(x, weight, bias, eps)

"""Matrix product, batched over any leading dimensions.

    out = a @ b,  a: (..., N, K), b: (..., K, M) -> out: (..., N, M)
    dL/da = dL/dout @ bᵀ        (..., N, M) @ (..., M, K)
    dL/db = aᵀ @ dL/dout        (..., K, N) @ (..., N, M)

Leading (batch) dimensions broadcast as in NumPy; the engine sums the gradient of
a broadcast operand back over them. A 1-D operand is treated as a row (left) or a
column (right) vector and the extra axis is removed again, as in ``np.matmul``.
"""
from __future__ import annotations

from ..broadcast import broadcast_shape
from ..function import Function, ShapeError


class MatMul(Function):
    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match: "
                             f"need (..., N, K) @ (..., K, M) with the same K")
        if (a.ndim > 2 or b.ndim > 2) and a.shape[:-2] != b.shape[:-2]:
            try:
                broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
            except ShapeError:
                raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} have batch dimensions "
                                 f"{tuple(a.shape[:-2])} and {tuple(b.shape[:-2])} that cannot be broadcast") from None
        a, b = _widest(ctx.xp, a, b)
        ctx.save_for_backward(a, b)
        return _product(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        d_a = _product(grad, xp.swap_last(b)) if need_a else None                  # g bᵀ
        if not need_b:
            return d_a, None
        if b.ndim == 2 and a.ndim > 2:   # aᵀ g summed over a's leading positions: one (K, B·N) @ (B·N, M)
            return d_a, xp.swap_last(a.reshape(-1, a.shape[-1])) @ grad.reshape(-1, grad.shape[-1])
        return d_a, xp.swap_last(a) @ grad                                          # the engine sums broadcast batches


class Linear(Function):
    """The affine map as one node: out = x @ W + b.

        x: (..., K), W: (K, M), b: (M,) or None -> out: (..., M)
        dL/dx = g Wᵀ,   dL/dW = Σ over the leading positions of xᵀ g,   dL/db = Σ g

    One node instead of matmul then add: the bias goes into the product's fresh output in
    place, and dL/dW and dL/db are each one reduction over the flattened positions.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0] or (
                bias is not None and tuple(bias.shape) != (weight.shape[1],)):
            raise ShapeError(f"linear: expected x (..., K), W (K, M) and b (M,) or None; got x {tuple(x.shape)}, "
                             f"W {tuple(weight.shape)}, b {None if bias is None else tuple(bias.shape)}")
        x, weight, bias = _widest(ctx.xp, x, weight, bias)
        ctx.save_for_backward(x, weight)
        out = _product(x, weight)
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        xp = ctx.xp
        need_x, need_w, need_b = ctx.needs_input_grad
        positions = grad.reshape(-1, grad.shape[-1])                                   # (B·T, M)
        d_x = _product(grad, xp.swap_last(weight)) if need_x else None                 # g Wᵀ
        d_w = xp.swap_last(x.reshape(-1, x.shape[-1])) @ positions if need_w else None  # (K, B·T) @ (B·T, M)
        d_b = xp.sum(positions, axis=0) if need_b else None                            # Σ over every position
        return d_x, d_w, d_b


def _widest(xp, *arrays):
    """The arrays (None passes) in float64 where float32 meets float64, as NumPy's @ promotes them: torch's refuses
    the mix, and minidl gives the widest float dtype on both devices. The backward then runs in float64 too (the
    engine hands each input its gradient in its own dtype). Integers with floats pass: torch refuses them."""
    dtypes = {a.dtype for a in arrays if a is not None}
    if len(dtypes) == 1 or {xp.dtype_name(a) for a in arrays if a is not None} != {"float32", "float64"}:
        return arrays
    return tuple(None if a is None else xp.astype(a, "float64") for a in arrays)


def _product(a, b):
    """a @ b; (..., N, K) @ (K, M) as one (··· N, K) @ (K, M) product: a single BLAS call
    instead of NumPy's one per leading index."""
    if b.ndim == 2 and a.ndim > 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


def matmul(a, b):
    if a.ndim == 1 and b.ndim == 1:
        return MatMul.apply(a.reshape(1, -1), b.reshape(-1, 1)).reshape(())
    if a.ndim == 1:
        out = MatMul.apply(a.reshape(1, -1), b)
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        return MatMul.apply(a, b.reshape(-1, 1)).reshape(a.shape[:-1])
    return MatMul.apply(a, b)


def linear(x, weight, bias=None):
    """x @ W + b as one node: x (..., K), W (K, M), b (M,) or None -> (..., M)."""
    return Linear.apply(x, weight, bias)

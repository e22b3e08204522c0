"""Elementwise arithmetic and maths, each with its local derivative.

Binary ops broadcast like NumPy; their backward returns gradients in the broadcast
shape and the engine sums them back to each input's shape (``broadcast.unbroadcast``).
Either operand may be a Python scalar (a constant: it gets no gradient).
"""
from __future__ import annotations

import math

from ..broadcast import broadcast_shape
from ..function import Function
from ..tensor import Tensor


def _check_broadcast(op, a, b):
    sa, sb = getattr(a, "shape", ()), getattr(b, "shape", ())
    if sa != sb and len(sa) and len(sb):
        broadcast_shape(op, sa, sb)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("add", a, b)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("sub", a, b)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("mul", a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        da, db = ctx.needs_input_grad
        return (grad * b if da else None), (grad * a if db else None)


class Div(Function):
    """out = a / b;  d/da = 1/b,  d/db = -a/b² = -out/b."""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("div", a, b)
        out = a / b
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        b, out = ctx.saved
        g_a = grad / b
        return g_a, (-g_a * out if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """out = a ** b;  d/da = b·a^(b-1),  d/db = out·log(a). As in torch, a gradient is 0 where the derivative is 0
    but the formula reads 0·inf: d/da where b = 0 (x ** 0 at x = 0 was NaN), d/db where a = 0 and b >= 0 (NaN;
    0.0 ** w failed in math.log(0))."""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("pow", a, b)
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved
        da, db = ctx.needs_input_grad
        g_a = _zero_where(ctx.xp, b == 0, grad * b * a ** (b - 1)) if da else None
        if not db:
            return g_a, None
        if isinstance(a, (int, float)):   # a number (0.0 ** w): math.log refuses 0 and below, torch's log does not
            log_a = math.log(a) if a > 0 else -math.inf if a == 0 else math.nan
        else:
            log_a = ctx.xp.log(a)
        return g_a, _zero_where(ctx.xp, (a == 0) & (b >= 0), grad * out * log_a)


def _zero_where(xp, cond, g):
    """``g`` with 0 where ``cond`` holds: a bool array, or one bool where the operand is a number."""
    if not hasattr(cond, "shape"):
        return xp.zeros_like(g) if cond else g
    return xp.where(cond, 0.0, g)


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad / a


class Sqrt(Function):
    """d sqrt(a)/da = 1 / (2 sqrt(a)): infinite at 0 (detect_anomaly reports it)."""

    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad / (2 * out)


class Abs(Function):
    """d|a|/da = sign(a); at the kink a = 0 we use 0 (a subgradient), as PyTorch does."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * ctx.xp.sign(a)


class Maximum(Function):
    """Elementwise max; at a tie the gradient is split evenly (as torch.maximum does)."""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("maximum", a, b)
        ctx.save_for_backward(a, b)
        return ctx.xp.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        g_a = grad * (a > b) + 0.5 * grad * (a == b)
        return g_a, (grad - g_a if ctx.needs_input_grad[1] else None)


class Where(Function):
    """out = a where cond else b; the (boolean) condition gets no gradient."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved
        zero = ctx.xp.zeros_like(grad)
        _, da, db = ctx.needs_input_grad
        return (None, ctx.xp.where(cond, grad, zero) if da else None,
                ctx.xp.where(cond, zero, grad) if db else None)


def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, b):
    return Pow.apply(a, b)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def abs(a):
    return Abs.apply(a)


def maximum(a, b):
    return Maximum.apply(a, b)


def minimum(a, b):
    """min(a, b) = -max(-a, -b): no separate backward needed."""
    return neg(maximum(-a, -b))


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b``; ``cond`` is a Tensor or array, read as booleans (nonzero: true)
    on both backends, so a float mask (``batch.mask``) works on torch too, which takes only booleans."""
    if isinstance(cond, Tensor):
        cond = cond.data
    anchor = a if isinstance(a, Tensor) else b
    if not isinstance(anchor, Tensor):
        raise TypeError("where: at least one of a, b must be a Tensor")
    return Where.apply(anchor.xp.asarray(cond, "bool"), a, b)

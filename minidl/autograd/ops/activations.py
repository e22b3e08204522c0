"""Activation functions and their derivatives, written in terms of the forward output
where that is cheaper (σ' = σ(1−σ), tanh' = 1 − tanh²)."""
from __future__ import annotations

import math

from ..function import Function, OpError


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        s = ctx.xp.sigmoid(x)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved
        return grad * s * (1 - s)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        t = ctx.xp.tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved
        return grad * (1 - t * t)


class ReLU(Function):
    """relu'(x) = 1 for x > 0, else 0 (0 at the kink x = 0, as in PyTorch). The forward is max(x, 0), not
    x·(x > 0), which gave NaN at −inf and −0.0 below 0; against an array of zeros, as NumPy's maximum with a
    scalar 0 is 1.5x slower."""

    name = "relu"

    @staticmethod
    def forward(ctx, x):
        positive = x > 0
        ctx.save_for_backward(positive)
        return ctx.xp.maximum(x, ctx.xp.zeros_like(x))

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved
        return grad * positive


class LeakyReLU(Function):
    """x for x > 0, α·x otherwise: the slope α keeps a gradient path alive for x < 0."""

    name = "leaky_relu"

    @staticmethod
    def forward(ctx, x, negative_slope):
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return ctx.xp.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved
        return ctx.xp.where(positive, grad, grad * ctx.negative_slope), None


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Function):
    """x·Φ(x), Φ the standard normal CDF; "tanh" uses the approximation of GPT-2/BERT.

    exact:  d/dx = Φ(x) + x·φ(x),            φ(x) = exp(−x²/2)/√(2π)
    tanh:   u = √(2/π)(x + 0.044715x³),  out = ½x(1 + tanh u),
            d/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
    """

    @staticmethod
    def forward(ctx, x, approximate):
        xp = ctx.xp
        ctx.approximate = approximate
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        if approximate != "none":
            raise OpError(f'gelu: approximate must be "none" or "tanh", got {approximate!r}')
        cdf = xp.erf(x * (1 / math.sqrt(2.0)))
        cdf += 1.0
        cdf *= 0.5
        if not any(ctx.needs_input_grad):             # inference: the output overwrites Φ(x)
            cdf *= x
            return cdf
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        x, saved = ctx.saved
        if ctx.approximate == "tanh":
            t = saved
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du), None
        cdf = saved
        d = x * x                                     # Φ(x) + x·φ(x), built in place
        d *= -0.5
        d = ctx.xp.exp_(d)
        d *= x
        d *= _INV_SQRT_2PI
        d += cdf
        d *= grad
        return d, None


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def relu(x):
    return ReLU.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU.apply(x, negative_slope)


def gelu(x, approximate="none"):
    return GELU.apply(x, approximate)

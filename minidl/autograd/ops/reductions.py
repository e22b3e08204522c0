"""Reductions over axes: sum, mean, max, logsumexp.

Backward spreads dL/dout back over the reduced axes: every input element of a sum
contributed with weight 1 (mean: 1/n; max: only the maxima; logsumexp: softmax).
"""
from __future__ import annotations

import math

from ...backend import normalise_axis
from ..function import Function


def _axes(axis, ndim):
    return tuple(sorted(normalise_axis(axis, ndim)))


def _keep(array, axes, keepdims):
    """Re-insert the reduced axes (as size 1) so ``array`` broadcasts against the input."""
    if keepdims:
        return array
    shape = list(array.shape)
    for a in axes:
        shape.insert(a, 1)
    return array.reshape(tuple(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, _axes(axis, x.ndim), keepdims
        return ctx.xp.sum(x, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.broadcast_to(_keep(grad, ctx.axes, ctx.keepdims), ctx.shape), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, _axes(axis, x.ndim), keepdims
        ctx.count = math.prod(x.shape[a] for a in ctx.axes)
        return ctx.xp.sum(x, axis=ctx.axes, keepdims=keepdims) / ctx.count

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.broadcast_to(_keep(grad, ctx.axes, ctx.keepdims) / ctx.count, ctx.shape), None, None


class Max(Function):
    """Ties share the gradient evenly (like torch.amax), so the rule is symmetric."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.axes, ctx.keepdims = _axes(axis, x.ndim), keepdims
        out = ctx.xp.max(x, axis=ctx.axes, keepdims=True)
        is_max = ctx.xp.astype(x == out, ctx.xp.dtype_name(x))  # float, so the division keeps x's dtype
        ctx.save_for_backward(is_max)
        return out if keepdims else out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in ctx.axes))

    @staticmethod
    def backward(ctx, grad):
        (is_max,) = ctx.saved
        count = ctx.xp.sum(is_max, axis=ctx.axes, keepdims=True)
        return _keep(grad, ctx.axes, ctx.keepdims) * is_max / count, None, None


class LogSumExp(Function):
    """out = m + log Σ exp(x − m) with m = max x (no overflow);  d out/dx = exp(x − out)."""

    name = "logsumexp"

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.axes, ctx.keepdims = _axes(axis, x.ndim), keepdims
        out = logsumexp_array(ctx.xp, x, ctx.axes)
        ctx.save_for_backward(x, out)
        return out if keepdims else out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in ctx.axes))

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved
        return _keep(grad, ctx.axes, ctx.keepdims) * ctx.xp.exp(x - out), None, None


def logsumexp_array(xp, x, axis=-1):
    """log Σ exp(x) over ``axis`` on plain arrays, kept dims, without overflow: m + log Σ exp(x − m),
    m = max x. The one place minidl writes it (log_softmax, logsumexp, the distillation loss)."""
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(abs(m) < float("inf"), m, 0.0)   # a row of −inf: −inf (x − m was −inf − (−inf) = nan), as torch
    return m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))


def softmax_array(xp, x, axis=-1):
    """softmax over ``axis`` on plain arrays, without overflow: exp(x − m) / Σ exp(x − m), m = max x."""
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


def softmax_backward_array(xp, s, grad, axis=-1):
    """dL/dx of s = softmax(x) from g = dL/ds: s ⊙ (g − Σ g ⊙ s) (softmax, attention weights)."""
    return s * (grad - xp.sum(grad * s, axis=axis, keepdims=True))


def sum(x, axis=None, keepdims=False):
    return Sum.apply(x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return Mean.apply(x, axis, keepdims)


def max(x, axis=None, keepdims=False):
    return Max.apply(x, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False):
    return LogSumExp.apply(x, axis, keepdims)

"""Softmax, log-softmax and the two classification losses, each one fused Function.

Fusing matters: cross-entropy through log_softmax + getitem + mean would build four
nodes and store four arrays; its whole gradient is simply ``softmax(z) − onehot(y)``.

Shapes: logits (..., C) -- e.g. (B, C) or (B, T, C) -- and class targets (...) of ints.
A ``mask`` of shape (...) (bool or 0/1) drops positions such as padding; ``"mean"``
averages over the positions the mask keeps. On CUDA tensors cross-entropy's loss and
gradient come from one Triton kernel (``minidl.kernels``) that reads the logits once.
"""
from __future__ import annotations

from ... import kernels
from ..function import Function, OpError, ShapeError
from .reductions import logsumexp_array, softmax_array, softmax_backward_array


class Softmax(Function):
    """s = exp(x − max) / Σ exp(x − max);  dL/dx = s ⊙ (g − Σ g ⊙ s)."""

    @staticmethod
    def forward(ctx, x, axis):
        s = softmax_array(ctx.xp, x, axis)
        ctx.save_for_backward(s)
        ctx.axis = axis
        return s

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved
        return softmax_backward_array(ctx.xp, s, grad, ctx.axis), None


class LogSoftmax(Function):
    """out = x − logsumexp(x);  dL/dx = g − softmax(x) · Σ g."""

    @staticmethod
    def forward(ctx, x, axis):
        out = x - logsumexp_array(ctx.xp, x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad - ctx.xp.exp(out) * ctx.xp.sum(grad, axis=ctx.axis, keepdims=True), None


def _reduce(ctx, loss, mask, reduction):
    """Apply the mask and the reduction; remember what backward needs to undo them."""
    xp = ctx.xp
    if mask is not None:
        if tuple(mask.shape) != tuple(loss.shape):
            raise ShapeError(f"{ctx.op}: mask has shape {tuple(mask.shape)}, expected {tuple(loss.shape)}")
        mask = xp.astype(mask, xp.dtype_name(loss))
        loss = loss * mask
    ctx.mask, ctx.reduction = mask, reduction
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        ctx.count = 1.0
        return total
    if reduction != "mean":
        raise OpError(f'{ctx.op}: reduction must be "mean", "sum" or "none", got {reduction!r}')
    # mean over the kept positions; a batch with none kept has loss 0 and gradient 0
    ctx.count = max(float(xp.sum(mask)) if mask is not None else float(xp.size(loss)), 1.0)
    return total / ctx.count


def _scale(ctx, grad):
    """dL/d(loss_i) for each position i: the upstream gradient, undoing mean and mask."""
    if ctx.reduction != "none":
        grad = grad / ctx.count
    return grad if ctx.mask is None else grad * ctx.mask


class CrossEntropy(Function):
    """loss_i = −log softmax(z_i)[y_i];  dloss_i/dz_i = softmax(z_i) − onehot(y_i)."""

    @staticmethod
    def forward(ctx, logits, targets, mask, reduction):
        xp = ctx.xp
        ctx.op = "cross_entropy"
        num_classes = logits.shape[-1]
        kinds = xp.dtype_name(logits), xp.dtype_name(targets)
        if "float" not in kinds[0] or not kinds[1].startswith(("int", "uint")):
            raise OpError(f"cross_entropy: logits are floats and targets class indices (ints), got {kinds[0]} "
                          f"logits and {kinds[1]} targets; e.g. md.tensor(labels, dtype=\"int64\")")
        if tuple(targets.shape) != tuple(logits.shape[:-1]):
            raise ShapeError(f"cross_entropy: logits {tuple(logits.shape)} need targets of shape "
                             f"{tuple(logits.shape[:-1])} (one class index per row), got {tuple(targets.shape)}")
        if xp.size(targets) and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
            raise OpError(f"cross_entropy: targets must lie in [0, {num_classes}), got values from "
                             f"{int(targets.min())} to {int(targets.max())}")
        ctx.kernel = kernels.use_kernel(logits)
        if ctx.kernel:
            loss, d_logits = kernels.cross_entropy_forward(logits, targets)
            ctx.save_for_backward(d_logits)
            return _reduce(ctx, loss, mask, reduction)
        # one (..., C) array, built in place: z − max, then its exp, then softmax(z)
        p = logits - xp.max(logits, axis=-1, keepdims=True)
        picked = xp.take_last(p, targets)                                       # z_y − max
        total = xp.sum(xp.exp_(p), axis=-1, keepdims=True)
        p /= total
        ctx.save_for_backward(p, targets)
        return _reduce(ctx, xp.log(total[..., 0]) - picked, mask, reduction)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        g = xp.asarray(_scale(ctx, grad))
        if ctx.kernel:
            (d_logits,) = ctx.saved  # softmax(z) − onehot(y), written by the forward kernel
            return d_logits * (g[..., None] if g.ndim else g), None, None, None
        p, targets = ctx.saved
        d_logits = p * (g[..., None] if g.ndim else g)                            # g · softmax(z) ...
        xp.add_last(d_logits, targets, -(g if g.ndim else g * xp.ones_like(p[..., 0])))   # ... − g · onehot(y)
        return d_logits, None, None, None


class BinaryCrossEntropyWithLogits(Function):
    """loss = max(x, 0) − x·y + log(1 + exp(−|x|))  (= −y log σ(x) − (1−y) log(1−σ(x)), stably);
    dloss/dx = σ(x) − y,  dloss/dy = −x (soft targets may carry gradients)."""

    @staticmethod
    def forward(ctx, logits, targets, mask, reduction):
        xp = ctx.xp
        ctx.op = "binary_cross_entropy_with_logits"
        if tuple(targets.shape) != tuple(logits.shape):
            raise ShapeError(f"binary_cross_entropy_with_logits: logits {tuple(logits.shape)} and targets "
                             f"{tuple(targets.shape)} must have the same shape")
        targets = xp.astype(targets, xp.dtype_name(logits))
        loss = xp.maximum(logits, 0.0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))
        ctx.save_for_backward(logits, targets)
        return _reduce(ctx, loss, mask, reduction)

    @staticmethod
    def backward(ctx, grad):
        logits, targets = ctx.saved
        g = _scale(ctx, grad)
        g_targets = -logits * g if ctx.needs_input_grad[1] else None
        return (ctx.xp.sigmoid(logits) - targets) * g, g_targets, None, None


def softmax(x, axis=-1):
    return Softmax.apply(x, axis)


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(x, axis)


def cross_entropy(logits, targets, mask=None, reduction="mean"):
    """Mean (or sum, or per-position) of −log p(target); logits (..., C), targets (...) ints."""
    return CrossEntropy.apply(logits, _constant(logits, targets), _constant(logits, mask), reduction)


def binary_cross_entropy_with_logits(logits, targets, mask=None, reduction="mean"):
    """Sigmoid + binary cross-entropy in one stable op; targets in [0, 1], logits' shape."""
    return BinaryCrossEntropyWithLogits.apply(logits, _constant(logits, targets), _constant(logits, mask), reduction)


def _constant(like, value):
    """Targets/masks given as lists or arrays become arrays on the logits' backend."""
    if value is None or hasattr(value, "_ctx"):
        return value
    return like.xp.asarray(value)

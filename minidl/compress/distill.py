"""Knowledge distillation: a small student learns from the labels *and* from a frozen teacher.

    loss = mean_b [ α·CE(s_b, y_b) + (1 − α)·T²·KL(softmax(t_b/T) ‖ softmax(s_b/T)) ]     kind="kl"
    loss = α·mean_b CE(s_b, y_b) + (1 − α)·mean_{b,c} (s_bc − t_bc)²                       kind="mse"

Shapes: student logits s (B, C), teacher logits t (B, C), targets y (B,) ints.

Why T²: the soft term's gradient is (1/T)·(softmax(s/T) − softmax(t/T)), and for large T
the softmax difference itself shrinks like 1/T (it is ≈ (s − t, centred)/(C·T)), so the
gradient would fall like 1/T². Multiplying by T² keeps it the same size whatever T is, and
α keeps meaning "the share of the hard-label term" when T is tuned (Hinton et al., 2015).

    history = distill(student, teacher, prepared.train, prepared.validation, epochs=2)
"""
from __future__ import annotations

import math
import time

import numpy as np

import minidl as md

from ..autograd.function import Function, ShapeError
from ..data.batching import batches

KINDS = ("kl", "mse")


class DistillationLoss(Function):
    """Fused forward and hand-written backward of the distillation loss (mean over the batch).

    With p = softmax(s), p_T = softmax(s/T), q_T = softmax(t/T):

        d loss / d s = α·(p − onehot(y))/B + (1 − α)·T·(p_T − q_T)/B         kind="kl"
        d loss / d s = α·(p − onehot(y))/B + (1 − α)·2·(s − t)/(B·C)          kind="mse"

    The teacher's logits and the targets are constants: no gradient flows to them.
    """

    @staticmethod
    def forward(ctx, student, teacher, targets, alpha, temperature, kind):
        xp = ctx.xp
        batch, classes = student.shape
        teacher = xp.astype(teacher, xp.dtype_name(student))
        log_p = _log_softmax(xp, student)
        cross_entropy = -xp.take_last(log_p, targets)                     # (B,)
        if kind == "kl":
            log_p_t = _log_softmax(xp, student / temperature)
            log_q_t = _log_softmax(xp, teacher / temperature)
            # q·(log q − log p); log q is finite (log-softmax), so q = 0 gives 0, not nan
            soft = xp.sum(xp.exp(log_q_t) * (log_q_t - log_p_t), axis=-1) * temperature ** 2
            ctx.save_for_backward(log_p, targets, log_p_t, log_q_t)
        else:
            soft = xp.sum((student - teacher) ** 2, axis=-1) / classes     # mean over C; / B below
            ctx.save_for_backward(log_p, targets, student, teacher)
        ctx.alpha, ctx.temperature, ctx.kind, ctx.batch = alpha, temperature, kind, batch
        return xp.sum(alpha * cross_entropy + (1.0 - alpha) * soft) / batch

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        log_p, targets, a, b = ctx.saved
        alpha, temperature = ctx.alpha, ctx.temperature
        d_hard = xp.exp(log_p)                                              # softmax(s) − onehot(y)
        xp.add_last(d_hard, targets, -xp.ones_like(log_p[..., 0]))
        if ctx.kind == "kl":
            d_soft = temperature * (xp.exp(a) - xp.exp(b))                  # T·(p_T − q_T)
        else:
            d_soft = 2.0 * (a - b) / a.shape[-1]                            # 2(s − t)/C
        d_student = (alpha * d_hard + (1.0 - alpha) * d_soft) * (grad / ctx.batch)
        return d_student, None, None, None, None, None


def _log_softmax(xp, x):
    m = xp.max(x, axis=-1, keepdims=True)
    return x - m - xp.log(xp.sum(xp.exp(x - m), axis=-1, keepdims=True))


def _check_settings(alpha, temperature, kind):
    if kind not in KINDS:
        raise ValueError(f'distillation_loss: kind must be "kl" or "mse", got {kind!r}')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha is the weight of the hard-label term and must lie in "
                         f"[0, 1], got {alpha}")
    if not temperature > 0:
        raise ValueError(f"distillation_loss: temperature must be > 0 (1 = plain softmax, the course "
                         f"uses 2), got {temperature}")


def distillation_loss(student_logits, teacher_logits, targets, alpha=0.5, temperature=2.0, kind="kl"):
    """Mean over the batch of α·CE(student, y) + (1 − α)·(soft term); see the module docstring.

    ``student_logits`` (B, C) Tensor; ``teacher_logits`` (B, C) Tensor or array, used as a
    constant (no gradient reaches the teacher); ``targets`` (B,) ints. ``temperature`` only
    matters for ``kind="kl"``.
    """
    _check_settings(alpha, temperature, kind)
    xp = student_logits.xp
    teacher = teacher_logits.data if isinstance(teacher_logits, md.Tensor) else xp.asarray(teacher_logits)
    if isinstance(teacher_logits, md.Tensor) and teacher_logits.xp is not xp:
        raise ValueError(f"distillation_loss: student logits live on {student_logits.device} and teacher "
                         f"logits on {teacher_logits.device}; move them with .to(device) first")
    targets = targets.data if isinstance(targets, md.Tensor) else xp.asarray(targets)
    if len(student_logits.shape) != 2:
        raise ShapeError(f"distillation_loss: student logits must be (B, C), got shape "
                         f"{tuple(student_logits.shape)}")
    if tuple(teacher.shape) != tuple(student_logits.shape):
        raise ShapeError(f"distillation_loss: teacher logits {tuple(teacher.shape)} and student logits "
                         f"{tuple(student_logits.shape)} must have the same shape (same batch, same classes)")
    batch, classes = student_logits.shape
    if tuple(targets.shape) != (batch,):
        raise ShapeError(f"distillation_loss: logits {tuple(student_logits.shape)} need targets of shape "
                         f"({batch},) (one class index per row), got {tuple(targets.shape)}")
    if xp.size(targets) and (int(targets.min()) < 0 or int(targets.max()) >= classes):
        raise ValueError(f"distillation_loss: targets must lie in [0, {classes}), got values from "
                         f"{int(targets.min())} to {int(targets.max())}")
    return DistillationLoss.apply(student_logits, teacher, targets, float(alpha), float(temperature), kind)


def distill(student, teacher, train, validation=None, epochs=3, batch_size=32, lr=1e-3, alpha=0.5,
            temperature=2.0, kind="kl", seed=0, device="cpu", cache_teacher=False, log=print):
    """Train ``student`` on the EncodedDataset ``train`` with the distillation loss against ``teacher``.

    The teacher runs in eval mode under ``no_grad`` and is not given to the optimizer, so its
    weights never change. ``cache_teacher=True`` runs the teacher once over ``train`` up front
    and looks its logits up by review (``batch.index``) afterwards: one teacher pass instead of
    ``epochs``. Batch order depends on (``seed``, epoch) only, so runs are reproducible.

    Returns ``{"loss": [mean training loss per epoch], "seconds": ...}`` plus, with a
    ``validation`` set, ``"validation": [metrics per epoch]`` and ``"validation_accuracy"``.
    """
    from ..train.trainer import evaluate

    if student is teacher:
        raise ValueError("distill: the student and the teacher are the same module; pass a separate student")
    if epochs < 1:
        raise ValueError(f"distill: epochs must be >= 1, got {epochs}")
    _check_settings(alpha, temperature, kind)  # now, rather than at the first batch

    teacher_was_training = teacher.training
    teacher.eval()
    cache = _teacher_logits(teacher, train, batch_size, device) if cache_teacher else None
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = md.optim.Adam(params, lr=lr)
    history = {"loss": [], "seconds": 0.0}
    if validation is not None:
        history["validation"], history["validation_accuracy"] = [], []
    start = time.perf_counter()
    student.train()
    try:
        for epoch in range(epochs):
            total, seen = 0.0, 0
            for batch in batches(train, batch_size, seed=seed, epoch=epoch, bucket=True, device=device):
                if cache is not None:
                    teacher_logits = cache[batch.index]
                else:
                    with md.no_grad():
                        teacher_logits = teacher(batch.ids, batch.mask, batch.lengths).logits
                logits = student(batch.ids, batch.mask, batch.lengths).logits
                loss = distillation_loss(logits, teacher_logits, batch.labels, alpha, temperature, kind)
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(f"distill: the loss became {value} in epoch {epoch}; "
                                             f"lower the learning rate (now {lr})")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += value * len(batch)
                seen += len(batch)
            history["loss"].append(total / max(seen, 1))
            message = f"distill epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}"
            if validation is not None:
                metrics = evaluate(student, validation, device=device)
                history["validation"].append(metrics)
                history["validation_accuracy"].append(metrics["accuracy"])
                message += f", validation accuracy {metrics['accuracy']:.4f}"
            if log:
                log(message)
    finally:
        teacher.train(teacher_was_training)
    history["seconds"] = time.perf_counter() - start
    return history


def _teacher_logits(teacher, encoded, batch_size, device):
    """(max index + 1, C) NumPy array: row ``i`` holds the teacher's logits for review ``index == i``."""
    rows = {}
    with md.no_grad():
        for batch in batches(encoded, batch_size, shuffle=False, bucket=True, device=device):
            logits = teacher(batch.ids, batch.mask, batch.lengths).logits.numpy()
            rows.update(zip(batch.index.tolist(), logits))
    if not rows:
        raise ValueError("distill: the training set is empty")
    table = np.zeros((max(rows) + 1, len(next(iter(rows.values())))), dtype=next(iter(rows.values())).dtype)
    for i, row in rows.items():
        table[i] = row
    return table

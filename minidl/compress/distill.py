"""Knowledge distillation: a small student learns from the labels *and* from a frozen teacher.

    loss = mean_b [ α·CE(s_b, y_b) + (1 − α)·T²·KL(softmax(t_b/T) ‖ softmax(s_b/T)) ]     kind="kl"
    loss = α·mean_b CE(s_b, y_b) + (1 − α)·mean_{b,c} (s_bc − t_bc)²                       kind="mse"

Shapes: student logits s (B, C), teacher logits t (B, C), targets y (B,) ints.

Why T²: the soft term's gradient is (1/T)·(softmax(s/T) − softmax(t/T)), and for large T
the softmax difference itself shrinks like 1/T (it is ≈ (s − t, centred)/(C·T)), so the
gradient would fall like 1/T². Multiplying by T² keeps it the same size whatever T is, and
α keeps meaning "the share of the hard-label term" when T is tuned (Hinton et al., 2015).

    history = distill(student, teacher, prepared.train, prepared.validation, epochs=2)

TinyBERT (Jiao et al., 2020) also matches what happens inside two transformers: for student
layer m (of L_s) and teacher layer g(m) = m·L_t/L_s (layer 0 = the embeddings),

    L_hidden = Σ_m MSE(H_s[m] W_h, H_t[g(m)])          H (B, T, D), W_h (D_s, D_t) learned
    L_attn   = Σ_{m≥1} MSE(A_s[m], A_t[g(m)])           A (B, h, T, T) attention maps
    loss     = (logit loss above) + hidden_weight·L_hidden + attention_weight·L_attn

(``IntermediateMatching``; ``distill(..., hidden_weight=1.0, attention_weight=1.0)``).
"""
from __future__ import annotations

import numpy as np

import minidl as md

from .. import kernels
from ..autograd import ops
from ..autograd.function import Function, ShapeError
from ..autograd.ops.reductions import logsumexp_array
from ..data.batching import batches, num_batches
from ..models.transformer import TransformerClassifier
from ..nn import Linear, Module
from ..optim.schedule import LinearWarmupDecay
from ..train import checkpoint, loop as core
from ..train.trainer import evaluate

KINDS = ("kl", "mse")


class DistillationLoss(Function):
    """Fused forward and hand-written backward of the distillation loss (mean over the batch).

    With p = softmax(s), p_T = softmax(s/T), q_T = softmax(t/T):

        d loss / d s = α·(p − onehot(y))/B + (1 − α)·T·(p_T − q_T)/B         kind="kl"
        d loss / d s = α·(p − onehot(y))/B + (1 − α)·2·(s − t)/(B·C)          kind="mse"

    The teacher's logits and the targets are constants: no gradient flows to them. On CUDA
    tensors one Triton kernel (``minidl.kernels``) writes every row's loss and gradient.
    """

    @staticmethod
    def forward(ctx, student, teacher, targets, alpha, temperature, kind):
        xp = ctx.xp
        batch, classes = max(student.shape[0], 1), student.shape[1]   # no rows: loss 0, as cross_entropy's mean
        teacher = xp.astype(teacher, xp.dtype_name(student))
        ctx.kernel = kernels.use_kernel(student)
        if ctx.kernel:
            loss, d_student = kernels.distillation_forward(student, teacher, targets, alpha, temperature, kind)
            ctx.save_for_backward(d_student)  # the gradient of the batch mean; backward scales it
            return xp.sum(loss) / batch
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
        if ctx.kernel:
            return ctx.saved[0] * grad, None, None, None, None, None
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
    return x - logsumexp_array(xp, x, -1)


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


def layer_map(student_layers, teacher_layers):
    """TinyBERT's uniform map g(m) = m·L_t/L_s (rounded down) for m = 0..L_s: [g(0), ..., g(L_s)].

    g(0) = 0 pairs the embeddings, g(L_s) = L_t the last layers. A student deeper than its
    teacher would have to share teacher layers, so it is refused."""
    if student_layers > teacher_layers:
        raise ValueError(f"intermediate matching: the student has {student_layers} layers but the teacher only "
                         f"{teacher_layers}; each student layer needs its own teacher layer (L_s <= L_t)")
    return [0] + [m * teacher_layers // student_layers for m in range(1, student_layers + 1)]


class IntermediateMatching(Module):
    """TinyBERT's hidden-state and attention-map losses between a student and a teacher transformer.

    Named dimensions: B batch, T tokens, D_s / D_t the model widths, h_s / h_t the heads,
    L_s / L_t the layers; N = Σ_{b,t} mask_bt the real tokens of the batch. Layer m of the
    student is matched to layer g(m) = ``layer_map(L_s, L_t)[m]`` of the teacher.

        L_hidden = Σ_{m=0..L_s} Σ_{b,t} mask_bt ‖H_s[m]_bt W_h − H_t[g(m)]_bt‖² / (N·D_t)
        L_attn   = Σ_{m=1..L_s} Σ_{b,i} mask_bi Σ_k Σ_j (A_s[m]_bkij − A_t[g(m)]_bkij)² / (N·h)
        forward  = hidden_weight·L_hidden + attention_weight·L_attn

    The hidden term is the mean squared error over real tokens and the D_t features; the
    attention term sums over the keys j the squared difference of the two attention rows of
    query i and averages over the heads k and the real queries, so neither depends on how much
    padding the batch has. Padded positions never count: padded query rows are masked out and
    padded keys have exactly 0 weight in both models. With h_s = h_t the heads are compared one
    by one (h = h_s); with unequal head counts there is no head-to-head pairing, so each model's
    maps are averaged over its heads first (h = 1). TinyBERT fits the raw scores QKᵀ/√d; here
    the probabilities, which stay bounded where the scores of padded keys are −1e9.

    W_h (D_s, D_t) is a ``Linear`` without bias, shared by every layer (TinyBERT has a separate
    W_e for the embeddings); it is a parameter of this module, trained with the student and
    saved with ``state_dict``. The teacher's states are constants (detached).
    """

    def __init__(self, student_dim, teacher_dim, hidden_weight=1.0, attention_weight=1.0, device=None,
                 dtype=None):
        super().__init__()
        if hidden_weight < 0 or attention_weight < 0 or not hidden_weight + attention_weight > 0:
            raise ValueError(f"IntermediateMatching: the weights must be >= 0 and not both 0, got "
                             f"hidden_weight={hidden_weight}, attention_weight={attention_weight}")
        self.hidden_weight, self.attention_weight = float(hidden_weight), float(attention_weight)
        self.projection = Linear(student_dim, teacher_dim, bias=False, device=device, dtype=dtype)

    def forward(self, student_states, teacher_states, student_attentions, teacher_attentions, mask):
        """Scalar loss from ``TransformerClassifier.forward_with_states``'s lists: student_states
        L_s + 1 tensors (B, T, D_s), teacher_states L_t + 1 (B, T, D_t), student_attentions L_s
        tensors (B, h_s, T, T), teacher_attentions L_t (B, h_t, T, T); mask (B, T), 1.0 on real tokens."""
        mapping = layer_map(len(student_attentions), len(teacher_attentions))
        mask = mask if mask.dtype == student_states[0].dtype else mask.to(dtype=student_states[0].dtype)
        real = ops.maximum(mask.sum(), 1.0)                                   # N, 1 for an all-padding batch
        loss = 0.0
        if self.hidden_weight:
            loss = loss + self.hidden_weight * self._hidden_loss(student_states, teacher_states, mapping, mask, real)
        if self.attention_weight:
            loss = loss + self.attention_weight * self._attention_loss(student_attentions, teacher_attentions,
                                                                      mapping, mask, real)
        return loss

    def _hidden_loss(self, student_states, teacher_states, mapping, mask, real):
        tokens = mask.unsqueeze(-1)                                           # (B, T, 1)
        total = 0.0
        for m, g in enumerate(mapping):
            difference = self.projection(student_states[m]) - teacher_states[g].detach()   # (B, T, D_t)
            total = total + (difference * difference * tokens).sum()
        return total / (real * self.projection.out_features)

    @staticmethod
    def _attention_loss(student_attentions, teacher_attentions, mapping, mask, real):
        B, T = mask.shape
        queries = mask.reshape(B, 1, T, 1)                                    # real query rows
        total = 0.0
        for m, g in enumerate(mapping[1:], start=1):
            a_s, a_t = student_attentions[m - 1], teacher_attentions[g - 1].detach()      # (B, h, T, T)
            if a_s.shape[1] != a_t.shape[1]:                                  # no head-to-head pairing
                a_s, a_t = a_s.mean(axis=1, keepdims=True), a_t.mean(axis=1, keepdims=True)
            difference = a_s - a_t
            total = total + (difference * difference * queries).sum() / a_s.shape[1]
        return total / real


def distill(student, teacher, train, validation=None, epochs=3, batch_size=32, lr=1e-3, alpha=0.5,
            temperature=2.0, kind="kl", seed=0, device="cpu", cache_teacher=False, hidden_weight=0.0,
            attention_weight=0.0, teacher_logits=None, weight_decay=0.0, warmup_steps=0, clip=None, patience=None,
            out=None, resume=False, callbacks=(), progress=False, log=print):
    """Train ``student`` on the EncodedDataset ``train`` with the distillation loss against
    ``teacher``, through the training core (``minidl.train.train``).

    The teacher runs in eval mode under ``no_grad`` and is not given to the optimizer, so its
    weights never change. ``cache_teacher=True`` runs the teacher once over ``train`` up front
    and looks its logits up by review (``batch.index``) afterwards: one teacher pass instead of
    ``epochs``. ``teacher_logits``: such a table computed already (``teacher_logits_table``),
    e.g. shared by several students or by subsets of one training set (it is looked up by
    ``batch.index``). Batch order depends on (``seed``, epoch) only, so runs are reproducible.

    Optimizer Adam (AdamW when ``weight_decay`` > 0), learning rate ``lr`` with a linear
    warm-up over ``warmup_steps`` and decay to 0 when ``warmup_steps`` > 0, gradient norm
    clipped at ``clip`` if given. After every epoch the student is scored on ``validation``
    (if given): the best epoch by accuracy is kept (the student ends with its weights) and
    ``patience`` epochs without a better one stop training. ``out``: a folder for best.npz /
    last.npz (student, optimizer, generators, position); ``resume=True`` continues from
    ``out``/last.npz and ends where an uninterrupted run ends.

    ``callbacks``: ``minidl.train`` Callbacks; ``on_train_begin(student, optimizer)`` once, and
    ``on_step(step, loss)`` right after every optimizer step (e.g. ``GradualPruning``, which
    prunes on its schedule and re-applies the masks; returning True stops training).

    ``hidden_weight`` / ``attention_weight`` > 0 add TinyBERT's intermediate matching
    (``IntermediateMatching``, see the module docstring) to the loss. It reads hidden states and
    attention maps, so both models must be ``TransformerClassifier``s (a GRU or TokenMLP has
    neither: use logit distillation alone). It needs the teacher's states of every batch, which
    ``cache_teacher`` does not keep (L_t + 1 tensors (N, T, D_t) would be far larger than the
    logits), so the two cannot be combined. The projection W_h is created here, on the student's
    device and dtype, and trained with the student by the same optimizer (and saved in the
    checkpoints as ``model.matching.*``).

    Returns ``{"loss": [mean training loss per epoch], "seconds": ..., "history": [the core's
    evaluations]}`` plus, with a ``validation`` set, ``"validation": [metrics per epoch]`` and
    ``"validation_accuracy"``, and with matching, ``"matching_loss"`` (its weighted part of the
    loss, per epoch) and ``"matching"`` (the trained ``IntermediateMatching``).
    """
    _check_distill(student, teacher, epochs, resume, out, alpha, temperature, kind)
    matching = _matching(student, teacher, hidden_weight, attention_weight,
                         cache_teacher or teacher_logits is not None)
    teacher_was_training = teacher.training
    teacher.eval()
    cache = _teacher_cache(teacher, train, teacher_logits, cache_teacher, batch_size, device)
    trained = _Trained(student, matching)   # the student and W_h: the weights to optimise and to checkpoint
    params = [p for p in trained.parameters() if p.requires_grad]
    optimizer = (md.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if weight_decay
                 else md.optim.Adam(params, lr=lr))
    epoch_steps = num_batches(train, batch_size)
    schedule = LinearWarmupDecay(optimizer, warmup_steps, epoch_steps * epochs) if warmup_steps else None
    checkpoints = core.Checkpoints(checkpoint.run_paths(out), lambda path, loop: checkpoint.save_state(
        path, trained, optimizer, loop, kind="distillation"))
    loop = None
    if resume:
        _, loop = checkpoint.resume(checkpoints.paths["last"], trained, optimizer, schedule,
                                    missing=f"distill: resume=True but there is no checkpoint at "
                                            f"{checkpoints.paths['last']}; distil without resume first")

    def loss_fn(student, batch):
        inputs = (batch.ids, batch.mask, batch.lengths)
        if matching is None:
            if cache is not None:
                targets = cache[batch.index]
            else:
                with md.no_grad():
                    targets = teacher(*inputs).logits
            return distillation_loss(student(*inputs).logits, targets, batch.labels, alpha, temperature, kind)
        with md.no_grad():
            teacher_out, teacher_states, teacher_attentions = teacher.forward_with_states(*inputs)
        out, states, attentions = student.forward_with_states(*inputs)
        match = matching(states, teacher_states, attentions, teacher_attentions, batch.mask)
        loss = distillation_loss(out.logits, teacher_out.logits, batch.labels, alpha, temperature, kind) + match
        return loss, {"matching": match.item()}

    class Report(core.Callback):
        def on_evaluate(self, step, metrics):
            if log:
                log(f"distill epoch {round(metrics['epoch'])}/{epochs}: loss {metrics['train_loss']:.4f}"
                    + (f" (matching {metrics['train_matching']:.4f})" if matching is not None else "")
                    + (f", validation accuracy {metrics['accuracy']:.4f}" if validation is not None else ""))

    def epoch_batches(epoch):
        return batches(train, batch_size, seed=seed, epoch=epoch, bucket=True, device=device)

    def validate(_):
        return evaluate(student, validation, device=device)

    try:
        loop, best = core.train(student, epoch_batches, loss_fn, optimizer, epochs=epochs, epoch_steps=epoch_steps,
                                schedule=schedule, clip=clip, evaluate=validate if validation is not None else None,
                                every=epoch_steps, metric="accuracy", patience=patience, checkpoints=checkpoints,
                                callbacks=[*callbacks, Report()], loop=loop, progress=progress and "distill", log=log,
                                advice=f"Lower the learning rate (now {lr}) or set clip.")
    finally:
        teacher.train(teacher_was_training)
    if best is not None:
        student.load_state_dict(best)
    history = {"loss": [h["train_loss"] for h in loop["history"]], "seconds": loop["seconds"],
               "history": loop["history"]}
    if validation is not None:
        history["validation"] = [h for h in loop["history"] if "accuracy" in h]
        history["validation_accuracy"] = [h["accuracy"] for h in history["validation"]]
    if matching is not None:
        history["matching_loss"], history["matching"] = [h["train_matching"] for h in loop["history"]], matching
    return history


def _check_distill(student, teacher, epochs, resume, out, alpha, temperature, kind):
    """Refuse what ``distill`` cannot do, before any work."""
    if student is teacher:
        raise ValueError("distill: the student and the teacher are the same module; pass a separate student")
    if epochs < 1:
        raise ValueError(f"distill: epochs must be >= 1, got {epochs}")
    if resume and not out:
        raise ValueError("distill: resume=True continues from out/last.npz; give the folder as out")
    _check_settings(alpha, temperature, kind)  # now, rather than at the first batch


def _teacher_cache(teacher, train, table, cache_teacher, batch_size, device):
    """The teacher's logits by review index: ``table`` as given (checked to cover ``train``),
    computed now with ``cache_teacher``, or None (the teacher then runs on every batch)."""
    if table is None:
        return teacher_logits_table(teacher, train, batch_size, device) if cache_teacher else None
    if len(table) <= int(np.max(train.index, initial=-1)):
        raise ValueError(f"distill: teacher_logits has {len(table)} rows but the training set has reviews with "
                         f"index up to {int(np.max(train.index))}; compute it over the full training set")
    return table


class _Trained(Module):
    """What distillation trains: the student, and TinyBERT's W_h (``matching``) when there is one."""

    def __init__(self, student, matching):
        super().__init__()
        self.student, self.matching = student, matching


def _matching(student, teacher, hidden_weight, attention_weight, cache_teacher):
    """The ``IntermediateMatching`` that ``distill`` trains, or None when both weights are 0."""
    if hidden_weight < 0 or attention_weight < 0:
        raise ValueError(f"distill: hidden_weight and attention_weight must be >= 0, got {hidden_weight} and "
                         f"{attention_weight}")
    if not hidden_weight and not attention_weight:
        return None
    for role, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, TransformerClassifier):
            raise ValueError(f"distill: hidden_weight/attention_weight match hidden states and attention maps, "
                             f"which only a TransformerClassifier has, but the {role} is a "
                             f"{type(model).__name__}; distill it from the logits alone (both weights 0)")
    if cache_teacher:
        raise ValueError("distill: cached teacher logits (cache_teacher=True or teacher_logits=) hold no hidden "
                         "states, but hidden_weight/attention_weight need the teacher's hidden states and "
                         "attention maps of every batch; let the teacher run live (no cache)")
    layer_map(len(student.encoder.layers), len(teacher.encoder.layers))  # refuse a too deep student now
    weight = student.out.weight
    return IntermediateMatching(student.d_model, teacher.d_model, hidden_weight, attention_weight,
                                device=weight.device, dtype=weight.dtype)


def teacher_logits_table(teacher, encoded, batch_size=128, device="cpu", progress=None):
    """(max index + 1, C) NumPy array: row ``i`` holds the teacher's logits for review ``index == i``
    (``progress``: a description, to show a bar of the reviews scored: 50,000 of IMDB's took minutes, silent).

    The teacher runs in eval mode (dropout off): the table is computed once and reused for the
    whole distillation, so a teacher left in train mode would freeze one random dropout draw
    per review into it (two tables then differ). Every module's own mode is restored after."""
    modes = [(module, module.training) for module in teacher.modules()]
    rows, bar = {}, core.progress_bar(progress, len(encoded), unit="review")
    teacher.eval()
    try:
        with md.no_grad():
            for batch in batches(encoded, batch_size, shuffle=False, bucket=True, device=device):
                logits = teacher(batch.ids, batch.mask, batch.lengths).logits.numpy()
                rows.update(zip(batch.index.tolist(), logits))
                if bar is not None:
                    bar.update(len(logits))
    finally:
        for module, training in modes:
            module.training = training
        if bar is not None:
            bar.close()
    if not rows:
        raise ValueError("distill: the training set is empty")
    table = np.zeros((max(rows) + 1, len(next(iter(rows.values())))), dtype=next(iter(rows.values())).dtype)
    table[list(rows)] = list(rows.values())
    return table

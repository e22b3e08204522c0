"""Masked-LM training: pretraining a teacher, or distilling a student from it on the masked positions.

Each step takes a batch of segments, hides 15 % of their tokens (``masking``), and scores
the model's (N, V) logits at the N hidden positions only:

    teacher (pretraining)   loss = CE(s, y)
    student (distillation)  loss = α·CE(s, y) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T))
                                   [+ TinyBERT's hidden-state / attention matching]
                                   [+ head_weight·L_head, the teacher's head features in the
                                      student's basis (``projection``)]

where y are the original tokens and t the frozen teacher's logits at the same positions of
the same masked input (``minidl.compress.distillation_loss``, with C = V classes, and
``IntermediateMatching``). AdamW with linear warm-up and decay, gradient clipping at norm 1.

Every ``eval_every`` steps (and at the end) the model is scored on the held-out fill-mask
cases and written to ``out`` (atomically), with its training log in the file's metadata.
``time_limit`` (seconds) ends training early, evaluated and saved, for fixed-budget runs;
the learning rate then has not decayed all the way.
"""
from __future__ import annotations

import os
import time

import numpy as np

import minidl as md

from ..autograd import ops
from ..compress.distill import IntermediateMatching, _check_settings, distillation_loss
from ..data.batching import batches
from ..nn import ModuleList
from ..optim.schedule import LinearWarmupDecay
from ..train import checkpoint
from ..train.checkpoint import differences
from ..train.config import ConfigError
from ..train.loop import Callback, Checkpoints, train
from .checkpoint import save_mlm
from .evaluate import accuracy, first_choices
from .masking import mask_tokens
from .projection import head_matching_loss, teacher_basis


def _scores(model, ids, mask, positions, with_states):
    """(N, V) logits at ``positions``, the head's features there (N, E), and the encoder's
    states and attention maps if asked (else None)."""
    h, states, attentions = (model.encoder(model.encoder_input(ids), mask, return_states=True) if with_states
                             else (model.encode(ids, mask), None, None))
    features = model.mlm_head.transform(h.reshape(-1, h.shape[-1])[positions])
    return model.mlm_head.logits(features, model.embedding.weight), features, states, attentions


class MaskedBatch:
    """A batch of segments (``batch``) and its masking (``masked``: inputs, positions, targets)."""

    def __init__(self, batch, masked):
        self.batch, self.masked = batch, masked

    def __len__(self):
        return len(self.batch)


def masked_batches(data, vocab, batch_size, seed, epoch, device):
    """The epoch's batches of segments with 15 % of their tokens hidden: the order and the
    hidden positions are functions of (seed, epoch, batch number), so a resumed run hides
    exactly what an uninterrupted one does."""
    for i, batch in enumerate(batches(data, batch_size, seed=seed, epoch=epoch, bucket=True, device=device)):
        rng = np.random.default_rng([seed, epoch, i])
        yield MaskedBatch(batch, mask_tokens(batch.ids.numpy(), batch.mask.numpy(), vocab, rng))


def _check_mlm(steps, teacher, alpha, temperature, hidden_weight, attention_weight, head_weight):
    """Refuse what ``train_mlm`` cannot do, before any work."""
    if steps < 1:
        raise ValueError(f"train_mlm: steps must be >= 1, got {steps}")
    if teacher is None and (alpha != 0.0 or hidden_weight or attention_weight or head_weight):
        raise ValueError("train_mlm: alpha, hidden_weight, attention_weight and head_weight are distillation "
                         "settings; pass a teacher, or leave them at 0")
    if head_weight < 0:
        raise ValueError(f"train_mlm: head_weight must be >= 0, got {head_weight}")
    if teacher is not None:
        _check_settings(alpha, temperature, "kl")


def train_mlm(model, data, vocab, steps, settings, out=None, teacher=None, cases=None, batch_size=64, lr=1e-3,
              warmup=None, weight_decay=0.01, alpha=0.0, temperature=2.0, hidden_weight=0.0, attention_weight=0.0,
              head_weight=0.0, eval_every=200, time_limit=None, seed=0, device="cpu", role="teacher",
              history=None, resume=False, source=None, callbacks=(), log=print):
    """Train ``model`` (built by ``build_mlm(len(vocab), settings)``) for ``steps`` steps over
    the segments ``data`` with the training core; with a ``teacher``, distil (see the module
    docstring). Returns the history: {"step", "loss", "top1", "top5", "seconds"} lists, one
    entry per evaluation. ``history``: that of an earlier run of this model, continued (its
    steps and seconds go on from where it stopped; the optimizer and the schedule start
    afresh, a warm restart).

    Every evaluation rewrites ``out`` (the weights: what the other commands read) and, beside
    it, ``state_path(out)``: the optimizer, the generators and the core's position.
    ``resume=True`` puts all of that back and ends bit for bit where an uninterrupted run
    ends (the hidden positions are a function of (seed, epoch, batch), not of a generator);
    a run resumed with other settings, or another ``source`` (JSON values naming the data, the
    teacher and the start, e.g. the command's options), is refused.
    ``callbacks``: ``minidl.train`` Callbacks, as for any run of the training core."""
    if log is not None:   # its lines print above the progress bar, not after it on the bar's line
        log = _above_the_bar(log)
    _check_mlm(steps, teacher, alpha, temperature, hidden_weight, attention_weight, head_weight)
    if head_weight:
        # Q (D_t, D_s): the basis the student's embedding table was projected onto
        basis = md.tensor(teacher_basis(teacher, model.d_model), device=device, dtype=model.out.weight.dtype)
    if teacher is not None:
        teacher.eval()
    matching = (IntermediateMatching(model.d_model, teacher.d_model, hidden_weight, attention_weight,
                                     device=device, dtype=model.out.weight.dtype)
                if teacher is not None and (hidden_weight or attention_weight) else None)
    trained = ModuleList([model] + ([matching] if matching is not None else []))   # what is optimised and saved
    optimizer = md.optim.AdamW(list(trained.parameters()), lr=lr, weight_decay=weight_decay)
    warmup = min(steps // 10, 1000) if warmup is None else warmup
    schedule = LinearWarmupDecay(optimizer, warmup, max(steps, warmup + 1))
    history = {key: list(values) for key, values in (history or {}).items()} or \
        {"step": [], "loss": [], "top1": [], "top5": [], "seconds": []}
    done = history["step"][-1] if history["step"] else 0
    earlier = history["seconds"][-1] if history["seconds"] else 0.0
    # what the run is: a resumed run must be the same one, or it would not end where this one ends
    run = {"steps": steps, "batch_size": batch_size, "lr": lr, "warmup": warmup, "weight_decay": weight_decay,
           "alpha": alpha, "temperature": temperature, "hidden_weight": hidden_weight,
           "attention_weight": attention_weight, "head_weight": head_weight, "eval_every": eval_every, "seed": seed,
           "role": role, "settings": settings, **(source or {})}
    loop = None
    if resume:
        history, done, earlier, loop = _resume(out, trained, optimizer, schedule, run, log)
    start = time.perf_counter() - (loop["seconds"] if loop else 0.0)

    def loss_fn(model, item):
        batch, masked = item.batch, item.masked
        ids = md.tensor(masked.inputs, device=device)
        positions = md.tensor(masked.positions, device=device)
        logits, features, states, attentions = _scores(model, ids, batch.mask, positions, matching is not None)
        if teacher is None:
            return ops.cross_entropy(logits, md.tensor(masked.targets, device=device))
        with md.no_grad():
            teacher_logits, teacher_features, teacher_states, teacher_attentions = _scores(
                teacher, ids, batch.mask, positions, matching is not None)
        loss = distillation_loss(logits, teacher_logits, masked.targets, alpha, temperature)
        if matching is not None:
            loss = loss + matching(states, teacher_states, attentions, teacher_attentions, batch.mask)
        if head_weight:
            loss = loss + head_weight * head_matching_loss(features, teacher_features, basis)
        return loss

    def evaluate(model):
        return accuracy(first_choices(model, vocab, cases, device=device), vocab, cases) if cases else {}

    class Record(Callback):
        """Appends each evaluation to ``history`` (saved with the weights) and reports it."""

        def on_evaluate(self, step, metrics):
            for key, value in (("step", done + step), ("loss", metrics["train_loss"]), ("top1", metrics.get("top1")),
                               ("top5", metrics.get("top5")), ("seconds", earlier + time.perf_counter() - start)):
                history[key].append(value)
            if log:
                shown = f", held-out top-1 {metrics['top1']:.3f} top-5 {metrics['top5']:.3f}" if cases else ""
                log(f"{role} step {done + step}/{done + steps}: loss {metrics['train_loss']:.4f}{shown} "
                    f"({history['seconds'][-1]:.0f} s)")

    def write(path, loop):
        save_mlm(path, model, vocab, settings, history, role)
        checkpoint.save_state(state_path(path), trained, optimizer, loop, kind="mlm", history=history,
                              offset={"step": done, "seconds": earlier}, run=run)

    train(model, lambda epoch: masked_batches(data, vocab, batch_size, seed, epoch, device), loss_fn, optimizer,
          steps=steps, schedule=schedule, clip=1.0, evaluate=evaluate if cases else None, every=eval_every,
          metric="top1", checkpoints=Checkpoints({"last": out} if out else {}, write),
          callbacks=[*callbacks, Record()], loop=loop, time_limit=time_limit, log=log,
          progress=log is not None and role,   # a bar between the evaluations (minutes apart at the course's size)
          advice=f"Lower the learning rate (now {lr}).")
    return history


def _above_the_bar(log):
    from tqdm import tqdm

    def say(message):
        with tqdm.external_write_mode():
            log(message)
    return say


def _resume(out, trained, optimizer, schedule, run, log):
    """Put the run saved beside ``out`` back (see ``train_mlm``); -> (history, steps and seconds
    before it, the core's loop record)."""
    path = state_path(out) if out else None
    meta, loop = checkpoint.resume(path, trained, optimizer, schedule, check=lambda saved: _same_run(path, saved, run),
                                   missing=f"train_mlm: resume=True but there is no training state at "
                                           f"{path or '(no out given)'}; train without resume first")
    done = meta["offset"]["step"]
    if loop["step"] >= run["steps"] and log:
        log(f"{out} has finished its {done + run['steps']} steps already: nothing to train")
    return meta["history"], done, meta["offset"]["seconds"], loop


def _same_run(path, meta, run):
    """Refuse to resume the state at ``path`` with other settings than it was trained with
    (a state saved before runs were recorded is taken as it is)."""
    if changed := differences(meta.get("run", run), run):
        raise ConfigError(f"cannot resume {path}: it was trained with different settings ({changed}); give the "
                          f"same options as the first time")


def state_path(out):
    """Where ``train_mlm`` keeps the training state of the checkpoint ``out``: teacher.npz ->
    teacher.state.npz."""
    root, extension = os.path.splitext(str(out))
    return f"{root}.state{extension or '.npz'}"


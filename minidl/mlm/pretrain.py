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

import math
import time

import numpy as np

import minidl as md

from ..autograd import ops
from ..compress.distill import IntermediateMatching, _check_settings, distillation_loss
from ..data.batching import batches
from ..optim.clip import clip_grad_norm_
from ..optim.schedule import LinearWarmupDecay
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


def train_mlm(model, data, vocab, steps, settings, out=None, teacher=None, cases=None, batch_size=64, lr=1e-3,
              warmup=None, weight_decay=0.01, alpha=0.0, temperature=2.0, hidden_weight=0.0, attention_weight=0.0,
              head_weight=0.0, eval_every=200, time_limit=None, seed=0, device="cpu", role="teacher",
              history=None, log=print):
    """Train ``model`` (built by ``build_mlm(len(vocab), settings)``) for ``steps`` steps over
    the segments ``data``; with a ``teacher``, distil (see the module docstring). Returns the
    history: {"step", "loss", "top1", "top5", "seconds"} lists, one entry per evaluation.
    ``history``: that of an earlier run of this model, continued (its steps and seconds go on
    from where it stopped; the optimizer and the schedule start afresh, a warm restart)."""
    if steps < 1:
        raise ValueError(f"train_mlm: steps must be >= 1, got {steps}")
    if teacher is None and (alpha != 0.0 or hidden_weight or attention_weight or head_weight):
        raise ValueError("train_mlm: alpha, hidden_weight, attention_weight and head_weight are distillation "
                         "settings; pass a teacher, or leave them at 0")
    if head_weight < 0:
        raise ValueError(f"train_mlm: head_weight must be >= 0, got {head_weight}")
    if head_weight:
        # Q (D_t, D_s): the basis the student's embedding table was projected onto
        basis = md.tensor(teacher_basis(teacher, model.d_model), device=device, dtype=model.out.weight.dtype)
    if teacher is not None:
        _check_settings(alpha, temperature, "kl")
        teacher.eval()
    matching = (IntermediateMatching(model.d_model, teacher.d_model, hidden_weight, attention_weight,
                                     device=device, dtype=model.out.weight.dtype)
                if teacher is not None and (hidden_weight or attention_weight) else None)
    params = list(model.parameters()) + (list(matching.parameters()) if matching is not None else [])
    optimizer = md.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warmup = min(steps // 10, 1000) if warmup is None else warmup
    schedule = LinearWarmupDecay(optimizer, warmup, max(steps, warmup + 1))
    rng = np.random.default_rng(seed)
    history = {key: list(values) for key, values in (history or {}).items()} or \
        {"step": [], "loss": [], "top1": [], "top5": [], "seconds": []}
    done = history["step"][-1] if history["step"] else 0
    earlier = history["seconds"][-1] if history["seconds"] else 0.0
    start, step, epoch, running, counted = time.perf_counter(), 0, 0, 0.0, 0

    def checkpoint(final=False):
        loss = running / max(counted, 1)
        model.eval()                                   # no dropout while scoring
        scores = accuracy(first_choices(model, vocab, cases, device=device), vocab, cases) if cases else {}
        model.train()
        for key, value in (("step", done + step), ("loss", loss), ("top1", scores.get("top1")),
                           ("top5", scores.get("top5")), ("seconds", earlier + time.perf_counter() - start)):
            history[key].append(value)
        if out:
            save_mlm(out, model, vocab, settings, history, role)
        if log:
            shown = f", held-out top-1 {scores['top1']:.3f} top-5 {scores['top5']:.3f}" if scores else ""
            log(f"{role} step {done + step}/{done + steps}: loss {loss:.4f}{shown} ({history['seconds'][-1]:.0f} s)"
                + (" [final]" if final else ""))

    model.train()
    while step < steps:
        for batch in batches(data, batch_size, seed=seed, epoch=epoch, bucket=True, device=device):
            masked = mask_tokens(batch.ids.numpy(), batch.mask.numpy(), vocab, rng)
            ids = md.tensor(masked.inputs, device=device)
            positions = md.tensor(masked.positions, device=device)
            logits, features, states, attentions = _scores(model, ids, batch.mask, positions, matching is not None)
            if teacher is None:
                loss = ops.cross_entropy(logits, md.tensor(masked.targets, device=device))
            else:
                with md.no_grad():
                    teacher_logits, teacher_features, teacher_states, teacher_attentions = _scores(
                        teacher, ids, batch.mask, positions, matching is not None)
                loss = distillation_loss(logits, teacher_logits, masked.targets, alpha, temperature)
                if matching is not None:
                    loss = loss + matching(states, teacher_states, attentions, teacher_attentions, batch.mask)
                if head_weight:
                    loss = loss + head_weight * head_matching_loss(features, teacher_features, basis)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"train_mlm: the loss became {value} at step {step}; lower the learning "
                                         f"rate (now {lr})")
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            running, counted = running + value, counted + 1
            out_of_time = time_limit is not None and time.perf_counter() - start > time_limit
            if step >= steps or out_of_time:
                checkpoint(final=True)
                return history
            if step % eval_every == 0:
                checkpoint()
                running, counted = 0.0, 0
        epoch += 1
    return history

"""One training loop for every model: mini-batches, evaluation every N steps, early stopping
on a validation metric, the best checkpoint kept, exact resume, and a clear stop on NaN.

    result = fit(TrainConfig(model="gru", hidden=64, data="imdb"), out="runs/gru")
    result.test["accuracy"]

Checkpoints (``out``/last.npz after every evaluation, ``out``/best.npz when the validation
metric improves) are written atomically. ``fit(..., resume=True)`` continues from last.npz
and ends exactly where an uninterrupted run with the same seed ends: the batch order is
a function of (seed, epoch), the position inside the epoch is saved, and so are the
optimizer's moments and the random generators (dropout).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

import minidl as md

from .. import optim
from ..data.batching import batches, num_batches
from ..metrics import classification_report
from ..models import build_model
from . import checkpoint
from .config import TrainConfig
from .prepare import prepare


class TrainingDiverged(md.MinidlError, FloatingPointError):
    """The loss became NaN or Inf; the message says where the last good checkpoint is."""


class Callback:
    """Override any of these; ``fit`` calls them with the live objects."""

    def on_train_begin(self, model, optimizer):
        pass

    def on_evaluate(self, step, metrics):
        pass

    def on_save(self, path, kind):  # kind: "last" or "best"
        pass

    def on_step(self, step, loss):  # return True to stop training now (e.g. to simulate a crash)
        return False


@dataclass
class Result:
    config: dict
    test: dict                      # metrics of the best checkpoint on the test split
    best_validation: dict           # the validation metrics that made it the best
    history: list = field(default_factory=list)  # one dict per evaluation
    steps: int = 0
    seconds: float = 0.0
    checkpoint: str = None          # best.npz, when an output folder was given
    stopped_early: bool = False


def evaluate(model, encoded, batch_size=128, device="cpu"):
    """Metrics of ``model`` on an EncodedDataset (eval mode, no graph)."""
    was_training = model.training
    model.eval()
    probabilities, labels, total_loss = [], [], 0.0
    with md.no_grad():
        for batch in batches(encoded, batch_size, shuffle=False, bucket=True, device=device):
            logits = model(batch.ids, batch.mask, batch.lengths).logits
            total_loss += md.cross_entropy(logits, batch.labels, reduction="sum").item()
            probabilities.append(logits.softmax(axis=-1).numpy())
            labels.append(batch.labels.numpy())
    model.train(was_training)
    return classification_report(np.concatenate(labels), np.concatenate(probabilities),
                                 loss=total_loss / max(len(encoded), 1))


def _better(metric, new, old):
    if old is None:
        return True
    return new[metric] < old[metric] if metric == "loss" else new[metric] > old[metric]


def build(config, prepared):
    """A fresh model and optimizer for ``config`` (weights from the seeded generator)."""
    md.manual_seed(config.seed)
    settings = config.model_config()
    if prepared.embeddings is not None:
        settings.update(embed_dim=prepared.embeddings.shape[1], embeddings=prepared.embeddings,
                        freeze_embeddings=config.freeze_embeddings)
    model = build_model(config.model, len(prepared.vocab), num_classes=len(prepared.label_names),
                        device=config.device, **settings)
    kind = {"adam": optim.Adam, "adamw": optim.AdamW}.get(config.optimizer)
    if kind is None:
        raise ValueError(f'optimizer must be "adam" or "adamw", got {config.optimizer!r}')
    params = [p for p in model.parameters() if p.requires_grad]
    return model, kind(params, lr=config.lr, weight_decay=config.weight_decay)


def fit(config, out=None, resume=False, callbacks=(), progress=True, log=print):
    """Train ``config`` (a TrainConfig or a dict); returns a ``Result`` with test metrics."""
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    if config.metric not in ("accuracy", "f1", "auc", "loss"):
        raise ValueError(f"metric must be accuracy, f1, auc or loss, got {config.metric!r}")
    prepared = prepare(config)
    model, optimizer = build(config, prepared)
    steps_per_epoch = num_batches(prepared.train, config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = (optim.LinearWarmupDecay(optimizer, config.warmup_steps, total_steps)
                if config.warmup_steps else None)
    eval_every = config.eval_every or steps_per_epoch
    selection = prepared.validation if prepared.validation is not None else prepared.test
    paths = {kind: os.path.join(out, f"{kind}.npz") for kind in ("last", "best")} if out else {}
    loop = {"epoch": 0, "batch": 0, "step": 0, "best": None, "bad_evaluations": 0, "history": [], "seconds": 0.0}
    best_state = None
    if resume:
        if not paths or not os.path.exists(paths["last"]):
            raise FileNotFoundError(f"resume=True but there is no checkpoint at "
                                    f"{paths.get('last', '(no output folder given)')}; train without resume first")
        meta, arrays = checkpoint.read(paths["last"])
        if meta["config"] != config.to_dict():
            changed = sorted(k for k in meta["config"] if meta["config"][k] != config.to_dict().get(k))
            raise ValueError(f"cannot resume {paths['last']}: it was trained with different settings ({changed})")
        loop = checkpoint.restore_training(meta, arrays, model, optimizer)
        if os.path.exists(paths["best"]):
            best_state = checkpoint.model_arrays(checkpoint.read(paths["best"])[1])
        if schedule:
            schedule.load_state_dict({**schedule.state_dict(), "last_step": loop["step"]})  # base lrs: the config's
        log(f"resumed from {paths['last']} at step {loop['step']} (epoch {loop['epoch']}, batch {loop['batch']})")

    saved_step = loop["step"] if resume else None

    def save(kind):
        nonlocal saved_step
        if paths:
            checkpoint.save(paths[kind], model, optimizer, config, prepared, loop)
            saved_step = loop["step"]
            for callback in callbacks:
                callback.on_save(paths[kind], kind)

    for callback in callbacks:
        callback.on_train_begin(model, optimizer)
    bar = _progress(total_steps, loop["step"], progress, config)
    start, stop, stopped_early = time.perf_counter() - loop["seconds"], False, False
    seen, seen_correct, seen_loss, window_start = 0, 0, 0.0, time.perf_counter()
    model.train()
    while loop["epoch"] < config.epochs and not stop:
        for i, batch in enumerate(batches(prepared.train, config.batch_size, seed=config.seed, epoch=loop["epoch"],
                                          bucket=config.bucket, device=config.device)):
            if i < loop["batch"]:
                continue  # resuming inside an epoch: same order, skip what was done
            logits = model(batch.ids, batch.mask, batch.lengths).logits
            loss = md.cross_entropy(logits, batch.labels)
            value = loss.item()

            def diverged(what, step):
                where = (f"the last good checkpoint is {paths['last']} (step {saved_step})"
                         if saved_step is not None else "no checkpoint was written yet")
                return TrainingDiverged(f"{what} at step {step} (epoch {loop['epoch']}); {where}. Lower the "
                                        f"learning rate (now {config.lr}) or keep clip_norm set (now {config.clip_norm}).")
            if not math.isfinite(value):
                raise diverged(f"the training loss became {value}", loop["step"] + 1)
            optimizer.zero_grad()
            loss.backward()
            if config.clip_norm:
                optim.clip_grad_norm_(optimizer.param_groups[0]["params"], config.clip_norm)
            optimizer.step()
            if schedule:
                schedule.step()
            loop["step"] += 1
            loop["batch"] = i + 1
            seen += len(batch)
            seen_loss += value * len(batch)
            seen_correct += int((logits.numpy().argmax(axis=1) == batch.labels.numpy()).sum())
            if bar is not None:
                bar.update(1)
                rate = seen / max(time.perf_counter() - window_start, 1e-9)
                bar.set_postfix(loss=f"{value:.4f}", acc=f"{seen_correct / seen:.3f}", reviews_per_s=f"{rate:.0f}")
            if any(callback.on_step(loop["step"], value) for callback in callbacks):
                stop = True
                break
            if loop["step"] % eval_every == 0:
                # nothing non-finite is evaluated, kept as best or saved: every checkpoint stays a good one
                problem = _non_finite(model, optimizer)
                if problem:
                    raise diverged(problem, loop["step"])
                metrics = evaluate(model, selection, device=config.device)
                if not math.isfinite(metrics["loss"]):
                    raise diverged(f"the validation loss became {metrics['loss']}", loop["step"])
                # train_loss / train_accuracy: means over the batches since the last evaluation
                metrics.update(step=loop["step"], epoch=loop["epoch"] + loop["batch"] / steps_per_epoch,
                               train_loss=seen_loss / max(seen, 1), train_accuracy=seen_correct / max(seen, 1))
                if config.test_curve:
                    scored = evaluate(model, prepared.test, device=config.device)
                    metrics.update(test_loss=scored["loss"], test_accuracy=scored["accuracy"])
                loop["history"].append(metrics)
                seen, seen_correct, seen_loss, window_start = 0, 0, 0.0, time.perf_counter()
                for callback in callbacks:
                    callback.on_evaluate(loop["step"], metrics)
                improved = _better(config.metric, metrics, loop["best"])
                if improved:
                    loop["best"], loop["bad_evaluations"] = metrics, 0
                    best_state = model.state_dict()  # a copy, in memory even without an output folder
                else:
                    loop["bad_evaluations"] += 1
                loop["seconds"] = time.perf_counter() - start
                if improved:
                    save("best")
                save("last")
                if config.patience is not None and loop["bad_evaluations"] >= config.patience:
                    stop = stopped_early = True
                    log(f"early stop at step {loop['step']}: no better validation {config.metric} "
                        f"in {config.patience} evaluations")
                    break
        else:
            loop["epoch"], loop["batch"] = loop["epoch"] + 1, 0
    if bar is not None:
        bar.close()
    problem = _non_finite(model, optimizer)
    if problem:   # after the last evaluation: the best weights are good, but the run did not end well
        raise TrainingDiverged(f"{problem} at the end of training (step {loop['step']}); the last good checkpoint is "
                               f"{paths.get('last', '(no output folder)')} (step {saved_step}). Lower the learning "
                               f"rate (now {config.lr}) or keep clip_norm set (now {config.clip_norm}).")
    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    test = evaluate(model, prepared.test, device=config.device)
    result = Result(config.to_dict(), test, loop["best"] or {}, loop["history"], loop["step"], seconds,
                    paths.get("best"), stopped_early)
    result.model = model  # the trained model with the best weights (an attribute, not saved with the numbers)
    return result


def _non_finite(model, optimizer):
    """What is not finite among the parameters and the optimizer's state (e.g. Adam's moments
    after an overflow), as words, or None."""
    for name, p in model.named_parameters():
        if not p.xp.all_finite(p.data):
            return f"parameter {name} became non-finite"
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if key != "step" and not p.xp.all_finite(value):
                return f"the optimizer's {key} of a parameter of shape {p.shape} became non-finite"
    return None


def _progress(total, initial, enabled, config):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"{config.model} h={config.hidden}", unit="step",
                dynamic_ncols=True, leave=False)

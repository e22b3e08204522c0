"""Classification from a config: ``fit`` prepares the data, builds the model and optimizer,
and hands them to the training core (``loop.train``); ``evaluate`` scores a model.

    result = fit(TrainConfig(model="gru", hidden=64, data="imdb"), out="runs/gru")
    result.test["accuracy"]

Checkpoints (``out``/last.npz after every evaluation, ``out``/best.npz when the validation
metric improves) are written atomically. ``fit(..., resume=True)`` continues from last.npz
and ends exactly where an uninterrupted run with the same seed ends: the batch order is
a function of (seed, epoch), the position inside the epoch is saved, and so are the
optimizer's moments, the schedule's position and the random generators (dropout). An ``out``
holding another run is refused unless ``resume=True`` or ``overwrite=True`` (a notebook cell run
again, ``fit(..., out="runs/gru", overwrite=True)``).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

import minidl as md

from .. import optim
from ..data.batching import batches, num_batches
from ..io import check_replaceable, check_writable, json_keys, npz_meta
from ..metrics import classification_report
from ..models import build_model
from . import checkpoint
from .config import ConfigError, TrainConfig, split_commas
from .loop import Callback, Checkpoints, progress_bar, train
from .prepare import data_files, prepare


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
    label_names: list = field(default_factory=list)   # class i is label_names[i]


def evaluate(model, encoded, batch_size=128, device="cpu", progress=None):
    """Metrics of ``model`` on an EncodedDataset (eval mode, no graph); ``progress``: a description, to show
    a bar of the reviews scored (IMDB's 25,000 test reviews take a GRU about 40 s on two cores)."""
    was_training = model.training
    model.eval()
    probabilities, labels, total_loss = [], [], 0.0
    bar = progress_bar(progress, len(encoded), unit="review")
    with md.no_grad():
        for batch in batches(encoded, batch_size, shuffle=False, bucket=True, device=device):
            logits = model(batch.ids, batch.mask, batch.lengths).logits
            total_loss += md.cross_entropy(logits, batch.labels, reduction="sum").item()
            probabilities.append(logits.softmax(axis=-1).numpy())
            labels.append(batch.labels.numpy())
            if bar is not None:
                bar.update(len(labels[-1]))
    if bar is not None:
        bar.close()
    model.train(was_training)
    return classification_report(np.concatenate(labels), np.concatenate(probabilities),
                                 loss=total_loss / max(len(encoded), 1))


def build(config, prepared):
    """A fresh model and optimizer for ``config`` (weights from the seeded generator)."""
    md.manual_seed(config.seed)
    settings = config.model_config()
    if prepared.embeddings is not None:
        settings.update(embeddings=prepared.embeddings, freeze_embeddings=config.freeze_embeddings)
    model = build_model(config.model, len(prepared.vocab), num_classes=len(prepared.label_names),
                        device=config.device, **settings)
    _check_positions(model, config, prepared)
    kind = {"adam": optim.Adam, "adamw": optim.AdamW}[config.optimizer]   # TrainConfig.check refused any other
    params = [p for p in model.parameters() if p.requires_grad]
    table = model.embedding.weight
    if config.embedding_lr is not None and any(p is table for p in params):   # the table learns at its own rate
        params = [{"params": [p for p in params if p is not table]}, {"params": [table], "lr": config.embedding_lr}]
    return model, kind(params, lr=config.lr, weight_decay=config.weight_decay, average=config.weight_average)


def _check_positions(model, config, prepared):
    """A model with learned positions must have one for every word of the longest review it will
    read (it stopped at the first batch longer than max_len, after the data was prepared)."""
    positions = getattr(getattr(model, "position", None), "max_len", None)
    splits = [s for s in (prepared.train, prepared.validation, prepared.test) if s is not None and len(s)]
    longest = max((int(s.lengths.max()) for s in splits), default=0)
    if positions is not None and longest > positions:
        raise ConfigError(f"--model {config.model} learns positions for max_len={positions} words, but the longest "
                          f"review it would read has {longest} (--max-length {config.max_length}); give --max-length "
                          f"{positions} or less, or --model-options '{{\"max_len\": {longest}}}'")


def _check_metric(config, selection, label_names):
    """--metric auc or f1 ranks checkpoints by a score that needs two classes among the reviews it is measured
    on: with one, AUC is undefined and F1 constant, and the first checkpoint was kept, silently."""
    present = np.unique(selection.labels)
    if config.metric in ("auc", "f1") and len(present) == 1:
        which = "validation" if config.validation or config.validation_data else "test"
        raise ConfigError(f"--metric {config.metric} cannot rank the checkpoints: the {len(selection)} {which} reviews "
                          f"are all {label_names[present[0]]!r}; choose --metric accuracy or loss, or give "
                          f"{which} reviews of two classes or more")


def _check_steps(config, steps_per_epoch):
    """The run's number of steps, once the settings counted in steps are known to fit in it."""
    total = steps_per_epoch * config.epochs
    for flag, steps, what in (("--warmup-steps", config.warmup_steps, "the learning rate would never decay"),
                              ("--embedding-freeze-steps", config.embedding_freeze_steps,
                               "the embedding table would never learn (--freeze-embeddings keeps it frozen)")):
        if steps and steps >= total:   # the schedule's internal error; the table frozen throughout, silently
            raise ConfigError(f"{flag} {steps} is not fewer than the run's {total} steps ({config.epochs} epoch(s) of "
                              f"{steps_per_epoch}), so {what}; give fewer steps")
    return total


def fit(config, out=None, resume=False, callbacks=(), progress=True, log=print, overwrite=False):
    """Train ``config`` (a TrainConfig or a dict) with the training core; returns a ``Result``
    with test metrics. A folder ``out`` holding another run is refused unless ``resume`` (go on
    from it) or ``overwrite`` (replace it; its results.json goes with this run's first checkpoint)."""
    config = (config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)).check()
    _check_out(out, resume, overwrite, config.teacher)
    if overwrite and out:
        callbacks = (*callbacks, _Replacing(out))
    paths, teachers = checkpoint.run_paths(out), checkpoint.teacher_files(config)   # (the files it will learn from)
    if resume:   # before the data are read (IMDB: seconds) and a teacher scores them (minutes)
        _check_resumable(paths.get("last"), config, teachers)
    tick = time.perf_counter()
    if progress and config.data != "synthetic":
        log(f"preparing {config.data}: reading, tokenising, building the vocabulary ...")
    prepared = prepare(config)
    if prepared.embeddings is not None:   # the model is as wide as the file: so recorded (it said --embed-dim's 50)
        config = replace(config, embed_dim=int(prepared.embeddings.shape[1]))
    if progress and time.perf_counter() - tick > 2.0:
        log(f"prepared {config.data}: {len(prepared.train)} training, "
            f"{len(prepared.validation) if prepared.validation is not None else 0} validation, {len(prepared.test)} "
            f"test reviews; {len(prepared.vocab)} words ({time.perf_counter() - tick:.0f} s)")
    model, optimizer = build(config, prepared)
    steps_per_epoch = num_batches(prepared.train, config.batch_size)
    total = _check_steps(config, steps_per_epoch)
    schedule = (optim.LinearWarmupDecay(optimizer, config.warmup_steps, total)
                if config.warmup_steps else None)
    selection = prepared.validation if prepared.validation is not None else prepared.test
    _check_metric(config, selection, prepared.label_names)
    checkpoints = Checkpoints(paths, lambda path, loop: checkpoint.save(path, model, optimizer, config, prepared, loop,
                                                                        teachers))
    loop, best_state = None, None
    if resume:
        loop, best_state = _resume(paths, model, optimizer, schedule)
        log(f"resumed from {paths['last']} at step {loop['step']} (epoch {loop['epoch']}, batch {loop['batch']})")

    if config.embedding_freeze_steps:
        callbacks = (*callbacks, FrozenWarmup(model, config.embedding_freeze_steps, loop["step"] if loop else 0))

    def train_batches(epoch):
        return batches(prepared.train, config.batch_size, seed=config.seed, epoch=epoch, bucket=config.bucket,
                       device=config.device, word_dropout=config.word_dropout, unk_id=prepared.vocab.unk_id)

    def validate(model):   # (bars under the training one: IMDB's test split is 25,000 reviews)
        metrics = evaluate(model, selection, device=config.device, progress=progress and "validation")
        if config.test_curve:
            scored = evaluate(model, prepared.test, device=config.device, progress=progress and "test")
            metrics.update(test_loss=scored["loss"], test_accuracy=scored["accuracy"])
        return metrics

    loop, best_now = train(model, train_batches, _loss_fn(config, prepared), optimizer, epochs=config.epochs,
                           epoch_steps=steps_per_epoch, schedule=schedule, clip=config.clip_norm, evaluate=validate,
                           every=config.eval_every or steps_per_epoch, metric=config.metric, patience=config.patience,
                           checkpoints=checkpoints, callbacks=callbacks, loop=loop,
                           progress=progress and f"{config.model} h={config.hidden}", log=log,
                           advice=f"Lower the learning rate (now {config.lr}) or keep clip_norm set "
                                  f"(now {config.clip_norm}).")
    test = _scored_on_test(model, best_now if best_now is not None else best_state, prepared, config, progress, log)
    result = Result(config.to_dict(), test, loop["best"] or {}, loop["history"], loop["step"], loop["seconds"],
                    paths.get("best"), loop["stopped_early"], list(prepared.label_names))
    result.model = model  # the trained model with the best weights (an attribute, not saved with the numbers)
    return result


def _scored_on_test(model, best_state, prepared, config, progress, log):
    """The test metrics of ``model`` with ``best_state`` (the weights of its best evaluation, if any) loaded."""
    if best_state is not None:
        model.load_state_dict(best_state)
    if progress:
        log(f"scoring the best checkpoint on {len(prepared.test)} test reviews ...")
    return evaluate(model, prepared.test, device=config.device, progress=progress and "test")


def _loss_fn(config, prepared):
    """The training loss of a batch: cross-entropy on the labels, or with a teacher the
    distillation loss against its logits (``minidl/train/teacher.py``)."""
    if prepared.teacher_logits is not None:
        from ..compress.distill import distillation_loss

    def loss_fn(model, batch):
        logits = model(batch.ids, batch.mask, batch.lengths).logits
        correct = (logits.numpy().argmax(axis=1) == batch.labels.numpy()).mean()
        if prepared.teacher_logits is None:
            return md.cross_entropy(logits, batch.labels), {"accuracy": correct}
        return distillation_loss(logits, prepared.teacher_logits[batch.index], batch.labels, config.distill_alpha,
                                 config.temperature), {"accuracy": correct}

    return loss_fn


class FrozenWarmup(Callback):
    """Fine-tuning after a frozen warm-up: the embedding table gets no gradient for the first
    ``steps`` steps (the rest of the model learns around the vectors as given), then learns.
    The optimizer skips a parameter without a gradient, so the table's Adam moments and step
    count start at its first update, as for a parameter that has just joined."""

    def __init__(self, model, steps, step=0):
        self.table = model.embedding.weight
        self.steps = steps
        self.table.requires_grad = step >= steps        # a resumed run past the warm-up has it learning

    def on_step(self, step, loss):
        if step == self.steps:
            self.table.requires_grad = True
        return False


def _check_out(out, resume, overwrite, teacher=None):
    """Refuse an ``out`` that cannot take this run, before any work: a file, a folder this user
    cannot write, one holding files of the same names that minidl train did not write, one whose
    checkpoint is a ``teacher`` (replaced by the student's, which then named itself its teacher), or one
    holding another run's results (unless ``resume`` or ``overwrite``). Checked here, not only by
    minidl train: Python's fit replaced another run silently, and trained up to its first save
    with a file as ``out``."""
    if resume and overwrite:   # the overwrite was ignored, without a word
        raise ConfigError("--resume goes on from --out's run and --overwrite replaces it: give one of them")
    if resume and not out:   # (it said "no checkpoint at (no output folder given); train without --resume first")
        raise ConfigError("--resume continues the run in --out: give --out, the folder of the run to continue")
    if not out:
        return
    check_writable(out, folder=True)
    written = {os.path.realpath(path) for path in checkpoint.run_paths(out).values()}
    if taught := [path for path in split_commas(teacher or "") if os.path.realpath(path) in written]:
        raise ConfigError(f"--teacher {taught[0]} is a checkpoint this run writes in --out {out}, so the student "
                          f"would replace its teacher; give another --out, or copy the teacher elsewhere first")
    owners = {**dict.fromkeys(("last.npz", "best.npz"), lambda path: "config" in npz_meta(path)),
              "results.json": lambda path: {"config", "test"} <= json_keys(path)}
    for name, is_own in owners.items():
        check_replaceable(os.path.join(out, name), is_own, "minidl train", "--out:")
    found = [name for name in owners if os.path.exists(os.path.join(out, name))]
    if found and not (resume or overwrite):
        raise OSError(f"--out {out} holds another run ({', '.join(found)}); pass --resume to continue it, "
                      f"--overwrite to replace it (from Python: fit(..., resume=True / overwrite=True)), or another "
                      f"folder")


class _Replacing(Callback):
    """--overwrite: the replaced run's results.json goes with this run's first checkpoint. It stayed beside the
    new checkpoints when the run stopped early; removed up front, it was lost also when the run was refused."""

    def __init__(self, out):
        self.results = os.path.join(out, "results.json")

    def on_save(self, path, kind):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.results)


def _check_resumable(last, config, teachers):
    """Refuse a --resume that cannot go on from ``last`` (out/last.npz): there is none, it was trained on other
    data files (other splits) or settings, or a --teacher checkpoint has changed since (other soft targets;
    ``teachers``: their hashes now)."""
    if not os.path.exists(last):
        raise FileNotFoundError(f"nothing to resume: there is no checkpoint at {last}; train without --resume first")
    checkpoint.check_data(last, data_files(config))
    meta = npz_meta(last)
    saved, now = TrainConfig.from_dict(meta["config"]).to_dict(), config.to_dict()   # added since: their defaults
    if config.validation_data:   # then --validation is unused (and refused): a run started with one resumes without
        saved["validation"] = now["validation"]
    if config.embeddings:   # then the width is the file's (the same file: check_data), not the unused --embed-dim's
        saved["embed_dim"] = now["embed_dim"]
    if changed := checkpoint.differences(saved, now, checkpoint.as_option):
        raise ConfigError(f"cannot resume {last}: it was trained with different settings ({changed}); give the same "
                          f"options as the first time")
    recorded = meta.get("teacher_files")   # (older runs recorded none)
    if recorded is not None and (changed := sorted(path for path in teachers if recorded.get(path) != teachers[path])):
        raise ConfigError(f"cannot resume {last}: --teacher {', '.join(changed)} has changed since the run learned "
                          f"from it (its SHA-256 differs), so its soft targets would be other ones; give that teacher "
                          f"back, or train again without --resume")


def _resume(paths, model, optimizer, schedule):
    """Put the run of ``paths``' last.npz back (``_check_resumable`` passed): weights, optimizer, generators,
    schedule; -> (its loop record, the weights of best.npz or None)."""
    _, loop = checkpoint.resume(paths["last"], model, optimizer, schedule, missing=f"{paths['last']} is gone")
    best_state = checkpoint.model_arrays(checkpoint.read(paths["best"])[1]) if os.path.exists(paths["best"]) else None
    return loop, best_state

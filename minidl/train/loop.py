"""The training core: the one loop through which every model in minidl learns.

    for epoch ...:
        for batch in batches(epoch):
            loss = loss_fn(model, batch)           # a scalar Tensor (and running statistics)
            optimizer.zero_grad(); loss.backward()
            clip the gradient norm; optimizer.step(); schedule.step()
            callbacks' on_step                      # e.g. gradual pruning; True stops training
            every ``every`` steps and at the end: evaluate, keep the best, save, stop early

Everything around that is a function or a callback the caller passes: classification
(``fit``), distillation (``compress.distill``), masked-LM pretraining and distillation
(``mlm.train_mlm``), fine-tuning (``mlm.finetune``) and the full-batch demos differ only in
their loss, their evaluation and what a checkpoint holds. So they all get the same
divergence stop, checkpoints, early stopping, schedule, clipping, progress bar and resume.

Resume: ``loop`` (what ``Checkpoints`` saved) puts the run back at (epoch, batch, step);
``batches(epoch)`` must give the same batches in the same order for the same epoch (minidl's
``batches`` is a function of (seed, epoch)), and the caller restores the weights, the
optimizer and the random generators. The run then ends bit for bit where an uninterrupted
one ends.

Divergence: the loss, the gradient norm (when clipping), the parameters and the optimizer's
state, and the validation loss are checked; the first that is not finite stops the run
with ``TrainingDiverged``, before anything is evaluated, kept as best or saved, so every
checkpoint holds finite weights with a finite validation loss. On NumPy a value that
overflows to infinity anywhere in a step or an evaluation stops it too: a sigmoid or tanh
squashes an infinite pre-activation back to ±1, so a run whose weights had grown past 1e19
trained on with a finite loss of 1e21 (PyTorch reports no overflows; there a run stops
when the infinity reaches one of the values above).
"""
from __future__ import annotations

import math
import re
import numbers
import time
from contextlib import nullcontext

import numpy as np

from ..errors import MinidlError
from ..autograd.tensor import Tensor
from ..optim.clip import clip_grad_norm_


class TrainingDiverged(MinidlError, FloatingPointError):
    """The loss, a gradient, a weight or the optimizer's state became NaN or Inf; the message
    says where the last good checkpoint is."""


class Callback:
    """Override any of these; the core calls them with the live objects."""

    def on_train_begin(self, model, optimizer):
        pass

    def on_step(self, step, loss):  # after the optimizer step; return True to stop training now
        return False

    def on_evaluate(self, step, metrics):
        pass

    def on_save(self, path, kind):  # kind: "last" or "best"
        pass

    def settled(self, step):
        """Whether the model is in its final form at ``step`` (a pruning schedule has ended). Until
        every callback is settled, each evaluation replaces the best and none counts towards
        early stopping: the kept model is never one from the middle of the schedule."""
        return True


class LossCurve(Callback, list):
    """A callback that is the list of every step's training loss."""

    def on_step(self, step, loss):
        self.append(loss)
        return False


class Checkpoints:
    """Where a run's checkpoints go: ``paths`` {"last": path, "best": path} (either may be
    missing: that kind is not written), each written by ``write(path, loop)`` (atomically:
    ``minidl.io``). ``saved_step``: the step of the newest checkpoint written, or resumed from
    (``train`` sets it)."""

    def __init__(self, paths, write):
        self.paths, self.write, self.saved_step = dict(paths), write, None

    def save(self, kind, loop, callbacks=()):
        if kind not in self.paths:
            return
        self.write(self.paths[kind], loop)
        self.saved_step = loop["step"]
        for callback in callbacks:
            callback.on_save(self.paths[kind], kind)

    def where(self):
        """The sentence a divergence message ends with."""
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {self.paths.get('last', self.paths.get('best'))} (step {self.saved_step})"


def _check_counts(batches, **counts):
    """A one-line ValueError for a count that is not a whole number >= 1 (patience=0 or epochs=-2 trained nothing
    and said nothing; epochs=2.5 ran 3), or ``batches`` that is not a function of the epoch (a list of batches read
    "TypeError: 'list' object is not callable")."""
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"train: {name} must be a whole number >= 1 (or None), got {value!r}")
    if not callable(batches):
        raise TypeError(f"train: batches must be a function of the epoch that gives its batches, e.g. "
                        f"lambda epoch: data; got a {type(batches).__name__}")


def _check_parts(optimizer, schedule, callbacks, time_limit):
    """One line for a part of the wrong kind, before the first step (an optimizer class read "type object 'Adam'
    has no attribute 'param_groups'"; schedule=0.1 failed after the first step had changed the weights)."""
    wrong = {"optimizer must be an optimizer instance, e.g. optim.Adam(model.parameters())":
             (optimizer, not hasattr(optimizer, "param_groups")),
             "schedule must be a schedule instance, e.g. optim.LinearWarmupDecay(optimizer, ...), or None":
             (schedule, schedule is not None and not hasattr(schedule, "step")),
             "callbacks must be a list of callback instances (not classes)":   # each event goes over them again
             (callbacks, not isinstance(callbacks, (list, tuple)) or any(isinstance(c, type) for c in callbacks)),
             "time_limit must be a number of seconds > 0, or None":
             (time_limit, time_limit is not None and not (isinstance(time_limit, numbers.Real) and time_limit > 0))}
    for what, (value, refused) in wrong.items():
        if refused:
            raise TypeError(f"train: {what}; got {value!r}")


_LOWER_STEMS = ("loss", "error", "perplexity", "entropy")   # inside a word too: num_errors, valperplexity
_LOWER_WORDS = {"err", "nll", "ppl", "mse", "mae", "rmse", "kl", "wer", "cer", "bpc", "ece"}   # whole words only


def lower_is_better(metric):
    """Whether a smaller ``metric`` is better: a word of its name ("val_loss", "cross_entropy", "MSE",
    "top1_error") is a loss, an error or a divergence; accuracy, f1, auc, top1 and the rest are maximised."""
    words = re.split(r"[^a-z0-9]+", metric.lower())
    return any(word in _LOWER_WORDS or any(stem in word for stem in _LOWER_STEMS) for word in words)


def new_loop():
    """The core's position and record, saved in checkpoints: epoch, batches done in it, steps
    done, the best evaluation so far, evaluations since it, every evaluation, seconds."""
    return {"epoch": 0, "batch": 0, "step": 0, "best": None, "bad_evaluations": 0, "history": [], "seconds": 0.0}


def train(model, batches, loss_fn, optimizer, *, epochs=None, steps=None, epoch_steps=None, schedule=None,
          clip=None, evaluate=None, every=None, metric="loss", patience=None, checkpoints=None, callbacks=(),
          loop=None, time_limit=None, progress=None, advice="", log=print):
    """Train ``model``; returns (loop, best_state): the loop record (``new_loop``'s keys, plus
    "stopped_early") and the model's weights at the best evaluation of this call (None
    without ``evaluate``).

    batches(epoch)        the epoch's batches (anything ``loss_fn`` takes), the same for the same epoch
    loss_fn(model, batch) the scalar loss Tensor, or (loss, {name: value}) running statistics;
                          each evaluation records their means since the previous one (weighted
                          by ``len(batch)``) as "train_loss" and "train_<name>"
    epochs / steps        when to stop: after ``epochs`` passes, or after ``steps`` steps
    epoch_steps           batches per epoch, if known: for the progress bar and the fractional
                          "epoch" of each evaluation
    schedule, clip        a learning-rate schedule stepped after every step; a gradient norm limit
    evaluate(model)       validation metrics (a dict; its "loss" must stay finite), with the
                          model in eval mode; every ``every`` steps and when training ends
    metric, patience      which metric picks the best (lower when ``lower_is_better(metric)``: a
                          loss, error, nll, perplexity...; else higher); stop after ``patience``
                          evaluations without a better one
    checkpoints           a ``Checkpoints``: "best" when the metric improves, "last" at every evaluation
    callbacks             ``Callback``s; one whose on_step returns True stops the run at once,
                          as a crash would: nothing more is evaluated or saved
    loop                  a saved loop record to resume from (see the module docstring)
    time_limit            seconds: once a step ends past it, evaluate, save and stop
    progress              a description: show a progress bar with it
    advice                what a divergence message suggests (e.g. the learning rate in use)
    """
    if epochs is None and steps is None:
        raise ValueError("train: say when to stop, with epochs or steps")
    _check_counts(batches, epochs=epochs, steps=steps, every=every, patience=patience)
    _check_parts(optimizer, schedule, callbacks, time_limit)
    if loop is not None and checkpoints is not None:
        checkpoints.saved_step = loop["step"]   # resumed: the checkpoint it came from is the last good one
    run = _Run(model, loss_fn, optimizer, schedule, clip, evaluate, metric, patience,
               checkpoints or Checkpoints({}, None), callbacks, loop, advice, log)
    for callback in callbacks:
        callback.on_train_begin(model, optimizer)
    run.total = total = steps if steps is not None else (epochs * epoch_steps if epoch_steps else None)
    bar = progress_bar(progress, total, run.loop["step"])
    model.train()
    crashed, ended = False, run.over(epochs, steps) or run.out_of_time(time_limit)   # a resumed run may be over
    # an overflow is a divergence (see the module docstring); NumPy's other warnings would come
    # before the one message a divergence gets, and what they warn of is caught by the checks. The bar
    # is closed (its line cleared) however the loop ends: Ctrl-C's message was glued onto it
    closing = bar if bar is not None else nullcontext()   # (a bar of no total has no truth value)
    with np.errstate(over="call", call=run.overflowed, invalid="ignore", divide="ignore"), closing:
        while not (ended or crashed):
            crashed, ended = run.epoch(batches(run.loop["epoch"]), every, steps, time_limit, epoch_steps, bar)
            ended = ended or (epochs is not None and run.loop["epoch"] >= epochs)
        if not crashed and run.evaluated_at != run.loop["step"]:
            run.evaluation(epoch_steps)
    run.loop["seconds"] = time.perf_counter() - run.start
    return run.loop, run.best_state


class _Run:
    """One call of ``train``: its record (``loop``), the best weights, and the three things it
    does -- a step, an epoch of steps, an evaluation."""

    def __init__(self, model, loss_fn, optimizer, schedule, clip, evaluate, metric, patience, checkpoints,
                 callbacks, loop, advice, log):
        self.model, self.loss_fn, self.optimizer, self.schedule, self.clip = model, loss_fn, optimizer, schedule, clip
        self.evaluate, self.metric, self.patience, self.checkpoints = evaluate, metric, patience, checkpoints
        self.callbacks, self.advice, self.log = callbacks, advice, log
        self.loop = {**new_loop(), **(loop or {}), "stopped_early": False}
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.start = time.perf_counter() - self.loop["seconds"]
        self.running, self.best_state, self.evaluated_at = _Running(), None, self.loop["step"]
        self.overflow = None   # NumPy's report of an overflow since the last check (its kind, "overflow")
        self.total = None      # the run's steps, where known: an evaluation at the last stops nothing early

    def overflowed(self, error, flag):
        """NumPy's call on an overflow (np.errstate(over="call")): remembered, and said by ``check``."""
        self.overflow = self.overflow or error

    def check(self, where, step):
        """Stop the run if a value overflowed to infinity since the last check."""
        if self.overflow:
            raise self.diverged(f"a value overflowed to infinity in {where}", step)

    def over(self, epochs, steps):
        """Whether the run has nothing left to do: its steps or epochs done, or stopped early (a
        resumed run that had stopped early stays so)."""
        loop = self.loop
        loop["stopped_early"] = (self.patience is not None and loop["bad_evaluations"] >= self.patience
                                 and loop["step"] != self.total)
        return (loop["stopped_early"] or (steps is not None and loop["step"] >= steps)
                or (epochs is not None and loop["epoch"] >= epochs))

    def out_of_time(self, time_limit):
        """Whether the run's seconds passed ``time_limit``, said in the log; a resumed run counts the seconds of
        the run it resumed (one resumed past the limit trains no step)."""
        if time_limit is None or time.perf_counter() - self.start <= time_limit:
            return False
        if self.log:
            self.log(f"time limit of {time_limit:g} s reached at step {self.loop['step']} (the run's seconds, those "
                     f"before any resume included)")
        return True

    def diverged(self, what, step):
        return TrainingDiverged(f"{what} at step {step} (epoch {self.loop['epoch']}); {self.checkpoints.where()}."
                                + (f" {self.advice}" if self.advice else ""))

    def epoch(self, batches, every, steps, time_limit, epoch_steps, bar):
        """Steps through one epoch's batches (skipping those a resumed run did); -> (crashed,
        ended): a callback stopped the run, or it ended (steps, time or patience)."""
        loop, done = self.loop, 0
        for i, batch in enumerate(batches):
            done = i + 1
            if i < loop["batch"]:
                continue  # resuming inside an epoch: same order, skip what was done
            value = self.step(batch)
            loop["batch"] = i + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(self.running.postfix())
            if any([callback.on_step(loop["step"], value) for callback in self.callbacks]):
                return True, False
            out_of_time = self.out_of_time(time_limit)
            if (every and loop["step"] % every == 0) or out_of_time:
                loop["stopped_early"] = self.evaluation(epoch_steps)
            if loop["stopped_early"] or out_of_time or (steps is not None and loop["step"] >= steps):
                return False, True
        if done == 0:
            raise ValueError("train: an epoch gave no batches; is the training set empty, or does batches(epoch) give "
                             "an iterator used up in an earlier epoch? (give a list, or a new one each epoch)")
        loop["epoch"], loop["batch"] = loop["epoch"] + 1, 0
        return False, False

    def step(self, batch):
        """One optimizer step on ``batch``; -> the loss as a float."""
        out = self.loss_fn(self.model, batch)
        loss, stats = out if isinstance(out, tuple) else (out, {})
        if not (isinstance(loss, Tensor) and loss.size() == 1):   # .item() of anything else failed from inside
            raise TypeError(f"train: loss_fn must return a Tensor holding one number (or (loss, {{name: value}})), "
                            f"got {type(loss).__name__}{f' of shape {loss.shape}' if isinstance(loss, Tensor) else ''}")
        value, step = loss.item(), self.loop["step"] + 1
        self.check("the forward pass", step)   # first: the cause of a loss that became inf or nan
        if not math.isfinite(value):
            raise self.diverged(f"the training loss became {value}", step)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip:
            norm = clip_grad_norm_(self.params, self.clip)
            if not math.isfinite(norm):
                raise self.diverged(f"the gradient norm became {norm}", step)
        self.check("the backward pass", step)
        self.optimizer.step()
        self.check("the optimizer step", step)
        if self.schedule is not None:
            self.schedule.step()
        self.loop["step"] += 1
        self.running.add(value, stats, _size(batch))
        return value

    def evaluation(self, epoch_steps):
        """Check, evaluate, record, keep the best, save; -> True when early stopping says stop.
        When the optimizer keeps a running average of the weights, the average is what is
        evaluated and kept as best; last.npz holds the trained weights (the average travels in
        the optimizer's state), so a resumed run goes on exactly."""
        loop = self.loop
        if problem := non_finite(self.model, self.optimizer):
            raise self.diverged(problem, loop["step"])
        averaged = self.optimizer.swap_average()
        try:
            metrics = self.validate()
            fraction = loop["batch"] / epoch_steps if epoch_steps else 0.0
            metrics.update(step=loop["step"], epoch=loop["epoch"] + fraction, **self.running.means())
            self.running.clear()
            self.evaluated_at = loop["step"]
            if not all(callback.settled(loop["step"]) for callback in self.callbacks):
                metrics["unsettled"] = True   # e.g. pruned to less than its final sparsity
            loop["history"].append(metrics)
            for callback in self.callbacks:
                callback.on_evaluate(loop["step"], metrics)
            improved = self.evaluate is not None and self.improves(metrics)
            if improved:
                loop["best"], loop["bad_evaluations"] = metrics, 0
                self.best_state = self.model.state_dict()  # a copy, in memory even without checkpoints
            elif self.evaluate is not None:
                loop["bad_evaluations"] += 1
            loop["seconds"] = time.perf_counter() - self.start
            if improved:
                self.checkpoints.save("best", loop, self.callbacks)
        finally:
            if averaged:
                self.optimizer.swap_average()
        self.checkpoints.save("last", loop, self.callbacks)
        if self.patience is None or loop["bad_evaluations"] < self.patience or loop["step"] == self.total:
            return False
        if self.log:
            self.log(f"early stop at step {loop['step']}: no better validation {self.metric} in "
                     f"{self.patience} evaluations")
        return True

    def improves(self, metrics):
        """Is ``metrics`` the new best (the first is; then by ``metric``, in its direction: see ``train``)? An
        unsettled evaluation always is (the latest model of a schedule, see ``Callback.settled``), and so
        is a settled one after an unsettled best."""
        best, metric = self.loop["best"], self.metric
        if best is None or metrics.get("unsettled") or best.get("unsettled"):
            return True
        return metrics[metric] < best[metric] if lower_is_better(metric) else metrics[metric] > best[metric]

    def validate(self):
        """The caller's metrics, the model in eval mode ({} without ``evaluate``); a non-finite
        validation loss stops the run."""
        if self.evaluate is None:
            return {}
        self.model.eval()
        try:
            metrics = self.evaluate(self.model)
        finally:
            self.model.train()
        if not isinstance(metrics, dict):
            raise TypeError(f"train: evaluate must return a dict of metrics like {{'loss': 0.42}}, got "
                            f"{type(metrics).__name__}")
        if self.metric not in metrics:   # a KeyError traceback at the second evaluation
            raise ValueError(f"train: metric={self.metric!r} is not among what evaluate returns "
                             f"({', '.join(map(str, metrics)) or 'nothing'}); choose one of them")
        metrics = _as_numbers(metrics, self.metric, saving=bool(self.checkpoints.paths))
        self.check("the validation", self.loop["step"])
        if not math.isfinite(metrics.get("loss", 0.0)):
            raise self.diverged(f"the validation loss became {metrics['loss']}", self.loop["step"])
        return metrics


def _as_numbers(metrics, metric, saving):
    """``metrics`` with NumPy values and Tensors of one number as Python numbers: checkpoints keep the history
    as JSON. One of several numbers stays as it is, unless checkpoints are written (JSON has no arrays: the
    first save was a traceback after the first evaluation) or it is ``metric`` (compared with the best)."""
    metrics = {name: v.item() if isinstance(v, (np.generic, np.ndarray, Tensor)) and math.prod(v.shape) == 1 else v
               for name, v in metrics.items()}
    for name, value in metrics.items():
        if isinstance(value, (np.ndarray, Tensor)) and (saving or name == metric):
            why = "picks the best" if name == metric else "is saved in the checkpoints' history"
            raise TypeError(f"train: evaluate's {name!r} holds {math.prod(value.shape)} numbers (shape "
                            f"{tuple(value.shape)}), but a metric that {why} is one number; return each number "
                            f"under a name of its own ({name}_0, {name}_1, ...)")
    return metrics


def non_finite(model, optimizer):
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


def _size(batch):
    try:
        return len(batch)
    except TypeError:
        return 1


class _Running:
    """Means of the training loss and statistics since the last evaluation, weighted by batch size."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.sums, self.count, self.since = {}, 0, time.perf_counter()

    def add(self, loss, stats, size):
        for name, value in (("loss", loss), *stats.items()):
            self.sums[name] = self.sums.get(name, 0.0) + float(value) * size
        self.count += size

    def means(self):
        return {f"train_{name}": total / self.count for name, total in self.sums.items()} if self.count else {}

    def postfix(self):
        shown = {name: f"{total / max(self.count, 1):.4f}" for name, total in self.sums.items()}
        shown["per_s"] = f"{self.count / max(time.perf_counter() - self.since, 1e-9):.0f}"
        return shown


def progress_bar(description, total, initial=0, unit="step"):
    """A progress bar on stderr, gone when closed (None without a ``description``)."""
    if not description:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit=unit, dynamic_ncols=True, leave=False)

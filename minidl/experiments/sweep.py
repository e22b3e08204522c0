"""Sweeps: many training runs over a grid of settings and seeds, each result appended to a
JSONL file the moment it finishes, so an interrupted sweep resumes where it stopped.

    from minidl.experiments.sweep import grid, run_sweep, summarise, table_markdown

    configs = grid(["rnn", "gru"], [16, 32, 64, 128], seeds=[0, 1, 2], data="imdb", epochs=4)
    results = run_sweep(configs, "runs/sweep/results.jsonl")     # local worker processes
    print(table_markdown(summarise(results)))

**Jobs and resuming.** A job is one ``TrainConfig`` dict; its key is a hash of the settings
that differ from the defaults (sorted JSON), so the same settings always get the same key,
also after TrainConfig gains a setting.
``run_sweep`` skips every job whose key already has a result in the file and runs the rest.
A record also keeps the SHA-256 of each file its run read (``inputs``: the vectors, a teacher
checkpoint, your own data files), and a job whose files have changed since (a teacher trained
again, vectors rebuilt) runs again: its new line replaces the old one. The key names a
teacher by its path; the digests tell which teacher that path held.
Each finished job is written as one complete line (append, flush, fsync): a crash or Ctrl-C
loses only the jobs that were running. A last line cut short by a crash is ignored with a
warning when reading, and cut off the file before the next sweep appends to it.

**Failures.** A job that raises is written to the file as ``{"key", "config", "error",
"traceback"}`` and reported in the progress log; the other jobs go on. Failed jobs do not
count as finished: running the sweep again retries them, and says so. ``load_results``
keeps one record per key (a success over an earlier failure); ``summarise`` skips failures.

**Executors: local processes, threads, a cluster.** ``run_sweep`` needs only an object with
``submit(fn, *args)`` that returns futures with ``.result()`` (``add_done_callback``, when
they have it, lets results be written in the order jobs finish). By default it starts a
``ProcessPoolExecutor`` with one worker per CPU ("spawn" processes: safe with PyTorch and
CUDA; a script that calls ``run_sweep`` needs the usual ``if __name__ == "__main__":`` guard);
the workers end with the sweep process, even when it is killed with -9.
A Dask ``Client`` is such an executor, so a sweep runs on a cluster with no new code::

    from distributed import Client, LocalCluster
    client = Client("tcp://scheduler:8786")            # or Client(LocalCluster(n_workers=4))
    run_sweep(configs, "runs/sweep/results.jsonl", executor=client)

Every Dask worker needs minidl installed and the data where the config says (IMDB under
``$MINIDL_DATA``, or ``data_path``); the workers only return results, and this process alone
writes the file. ``mpi4py.futures.MPIPoolExecutor`` and ``ThreadPoolExecutor`` work the same
way. An executor passed in is never shut down here. minidl's grad mode and random generators
are per process, so ``run_job`` runs one training at a time in a process (threads queue up):
for parallel runs use processes (or Dask workers with ``processes=True``).
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import multiprocessing
import multiprocessing.connection
import numbers
import os
import queue
import re
import shlex
import signal
import socket
import sys
import threading
import time
import traceback
import types
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..errors import MinidlError
from ..bench.threads import describe as describe_threads, set_threads, usable_cpus
from ..command import comma_items
from ..io import check_writable, drop_truncated_tail, file_sha256
from ..models import MODELS
from ..train import fit
from ..train.config import ConfigError, TrainConfig, as_option, split_commas
from ..train.loop import Callback
from ..train.prepare import load_splits, own_files

MERGED_SETTINGS = ("model_options",)      # dict settings a per-model override extends rather than replaces
AXES = ("model", "hidden", "seed")
METRICS = ("accuracy", "f1", "auc", "loss")

_FIT_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- the grid

def grid(models, hidden_sizes, seeds, per_model=None, **fixed):
    """One complete TrainConfig dict per (seed, model, hidden).

    ``hidden_sizes``: ints, or lists of layer sizes for the MLP scorers (``[[50], [64, 32]]``).
    ``fixed``: any other TrainConfig setting for every job (``data="imdb", epochs=4``).
    ``per_model``: settings for one model only, e.g. ``{"attention": {"model_options":
    {"radius": 5}}}`` (a ``model_options`` dict extends the fixed one).

    Jobs come seed by seed: the runs that share a seed share a data split, which each worker
    process prepares once and caches.
    """
    models = [models] if isinstance(models, str) else list(models)
    per_model = dict(per_model or {})
    _check_grid(models, hidden_sizes, seeds, per_model, fixed)

    configs = []
    for seed, model, hidden in itertools.product(seeds, models, hidden_sizes):
        settings = _job_settings(fixed, per_model.get(model, {}), model, _model_hidden(model, hidden), seed)
        configs.append(_checked(settings).to_dict())
    return configs


def _check_grid(models, hidden_sizes, seeds, per_model, fixed):
    """Raise a ValueError for unknown models, settings for models not swept, a grid axis
    (model, hidden, seed) among the settings, or an empty axis."""
    if unknown := [m for m in [*models, *per_model] if m not in MODELS]:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if stray := sorted(set(per_model) - set(models)):
        raise ValueError(f"per-model settings for {stray}, which are not among the swept models {models}")
    for where, settings in [("fixed settings", fixed), *((f"settings for {m}", s) for m, s in per_model.items())]:
        if axes := sorted(set(settings) & set(AXES)):
            raise ValueError(f"{axes} in the {where}: model, hidden and seed are the grid's axes; "
                             f"pass them as grid(models, hidden_sizes, seeds)")
    if not models or not list(hidden_sizes) or not list(seeds):
        raise ValueError("grid needs at least one model, one hidden size and one seed")


def _checked(settings):
    """The job's TrainConfig, refused before any job runs if it could not train (one ConfigError
    naming the job, so a bad --set is one line, not a results file of failed jobs)."""
    try:
        return TrainConfig.from_dict(settings).check()
    except ConfigError as e:
        raise ConfigError(f"{settings['model']}, hidden {settings['hidden']}: {e}") from None


def _model_hidden(model, hidden):
    """``hidden`` as an int or a list of ints, checked against what ``model`` accepts."""
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        return int(hidden)
    if not (isinstance(hidden, (list, tuple)) and hidden and all(isinstance(h, numbers.Integral) for h in hidden)):
        raise ValueError(f"a hidden size must be an int or a non-empty list of ints, got {hidden!r}")
    hidden = [int(h) for h in hidden]
    if not MODELS[model].hidden_list:
        takers = ", ".join(name for name, cls in MODELS.items() if cls.hidden_list)
        raise ValueError(f"hidden={hidden} is a list of layer sizes, which only the MLP scorers "
                         f"({takers}) take; {model!r} needs one int")
    return hidden


def _job_settings(fixed, override, model, hidden, seed):
    """The settings of one job: the fixed ones, overridden by the model's own (whose dicts in
    ``MERGED_SETTINGS`` extend the fixed dicts), and the grid point (model, hidden, seed)."""
    settings = {**fixed, **override}
    for name in MERGED_SETTINGS:
        if isinstance(fixed.get(name), dict) and isinstance(override.get(name), dict):
            settings[name] = {**fixed[name], **override[name]}
    settings.update(model=model, hidden=hidden, seed=int(seed))
    return settings


def complete_config(config):
    """``config`` with every TrainConfig default filled in (unknown settings are an error)."""
    return TrainConfig.from_dict(dict(config)).to_dict()


def job_key(config):
    """A stable 16-hex-digit key: the SHA-256 of the settings that differ from TrainConfig's
    defaults, as sorted JSON. Equal settings get equal keys however they were written, and a
    setting added to TrainConfig later, at a default that changes nothing, leaves the keys of
    earlier results as they were."""
    complete, defaults = complete_config(config), TrainConfig().to_dict()
    if complete["embeddings"]:   # the model is as wide as the vectors (a record's config says so, the job's not)
        complete["embed_dim"] = defaults["embed_dim"]
    changed = {name: value for name, value in complete.items() if value != defaults[name]}
    text = json.dumps(changed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def input_files(config):
    """The files ``config`` reads besides the built-in datasets: the word vectors, each teacher
    checkpoint (not a baseline teacher), your own data, validation and test files."""
    from ..baseline import KINDS

    teachers = split_commas(config.get("teacher") or "")
    data = config.get("data")
    named = [config.get("embeddings"), *(t for t in teachers if t not in KINDS),
             None if data in ("synthetic", "imdb") else data, config.get("validation_data"), config.get("test_data")]
    return sorted({path for path in named if path})


def file_digest(path):
    """The SHA-256 of a file's bytes (hex); None when there is no such file."""
    try:
        return file_sha256(path)
    except OSError:
        return None


# ----------------------------------------------------------------------------- one job

def run_job(config):
    """Train one config (in whatever process the executor chose); returns its result record,
    which names the host and the torch and BLAS thread counts it ran with: float sums, and so a
    run's digits, differ between thread counts (a sweep gives each job cpus // workers threads).
    Each validation check prints a line (a job may train for an hour): the job, its step and
    epoch, and how it scores."""
    class ChecksLog(Callback):
        def on_evaluate(self, step, metrics):
            scores = ", ".join(f"{name} {metrics[name]:.3f}" for name in ("accuracy", "loss") if name in metrics)
            print(f"  {describe(config)}: step {step:,} (epoch {metrics.get('epoch', 0):.1f}), validation {scores}",
                  file=sys.stderr, flush=True)

    config = complete_config(config)
    inputs = {path: file_digest(path) for path in input_files(config)}   # read before training reads them
    with _FIT_LOCK:  # grad mode and generators are per process: one training at a time here
        result = fit(config, callbacks=(ChecksLog(),), progress=False, log=lambda *args, **kwargs: None)
    return {"key": job_key(config), "config": result.config, "test": result.test,
            "best_validation": result.best_validation, "steps": result.steps, "seconds": result.seconds,
            "stopped_early": result.stopped_early,
            "history": [{k: v for k, v in h.items() if k != "confusion_matrix"} for h in result.history],
            "host": socket.gethostname(), "threads": describe_threads(), "inputs": inputs}


# ----------------------------------------------------------------------------- the results file

def one_per_job(records):
    """``records`` with one per job key: a success wins over a failure, a later line over an earlier one."""
    kept = {}
    for record in records:
        key = _key(record)
        old = kept.get(key)
        if old is None or not (record.get("error") and not old.get("error")):
            kept[key] = record
    return list(kept.values())


def _key(record):
    """The record's job key, computed again from its config (the stored "key" may come from an
    older way of computing it); the stored one for a config this version cannot read."""
    try:
        return job_key(record["config"])
    except (KeyError, TypeError, ValueError):
        return record["key"]


def load_results(path):
    """The records of a results file, one per job key (a success wins over a failure, a later
    line over an earlier one), in the order the keys first appear.

    A last line cut short by a crash is skipped with a warning; any other line that is not a
    JSON record is an error naming the line."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no sweep results at {path!r}; run `minidl sweep --results {path}` first")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give the results.jsonl file that `minidl sweep --results` wrote")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    records, bad, truncated = scan_records(lines)
    # a last line that is no record: a write cut short by a crash, or, the file's only line, a file of the
    # user's (a note, a results.json) that is not a sweep's
    if not records and (bad or (truncated and not truncated.startswith(RECORD_START))):
        number, error = (bad or [(len(lines), "not a sweep record")])[0]
        raise ValueError(f"{path} is not a sweep results file (line {number}: {error}); give the JSONL file "
                         f"that `minidl sweep --results` writes") from None
    if truncated:
        warnings.warn(f"{path}: ignoring a truncated last line ({len(truncated)} bytes), left by an interrupted "
                      f"write; that job will run again with the next sweep", stacklevel=2)
    if bad:
        number, error = bad[0]
        raise ValueError(f"{path} line {number} is not a sweep result ({error}); only the last line can be cut "
                         f"short by a crash, so this one was changed by hand: fix or delete it") from error
    return one_per_job(records)


def scan_records(lines):
    """A sweep file's lines (split at newlines) -> (records, bad, truncated): its sweep records in order,
    (line number, ValueError) of every other non-empty line but the last, and the last one if it is no
    record (no newline after it: a write cut short, or one being written)."""
    records, bad, truncated = [], [], None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not (isinstance(record, dict) and "key" in record and isinstance(record.get("config"), dict)
                    and (record.get("error") or isinstance(record.get("test"), dict))):
                raise ValueError("a sweep record is a JSON object with a 'key', a 'config' and a 'test' (or an "
                                 "'error')")
        except ValueError as e:
            if number == len(lines):
                truncated = line
            else:
                bad.append((number, e))
            continue
        records.append(record)
    return records, bad, truncated


RECORD_START = b'{"key": '   # how every line _record and a failed job write begins (json.dumps)


def _plain(value):
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to a results file")


# ----------------------------------------------------------------------------- running

class InlineExecutor:
    """No workers: each job runs in this process when its result is asked for, one at a time
    (so each is written to the file as soon as it ends). For debugging: pdb, plain tracebacks."""

    def submit(self, fn, *args, **kwargs):
        return types.SimpleNamespace(result=functools.partial(fn, *args, **kwargs))   # a future without callbacks


def _finished_order(futures):
    """Indices of ``futures`` as they finish: through ``add_done_callback`` when the futures
    have it (concurrent.futures, Dask), otherwise in the order they were submitted."""
    if not all(hasattr(f, "add_done_callback") for f in futures):
        yield from range(len(futures))
        return
    finished = queue.Queue()
    for i, future in enumerate(futures):
        future.add_done_callback(lambda _, i=i: finished.put(i))
    for _ in futures:
        yield finished.get()


def describe(config):
    """``gru hidden=64 seed=0``: how a job is named in the progress log."""
    return f"{config['model']} hidden={json.dumps(config['hidden'], separators=(',', ':'))} seed={config['seed']}"


def _init_worker(threads, sweep_pid, shown=()):
    """Initializer of each local worker process: end with the sweep process, then cap threads
    (torch and every BLAS pool, for the worker's whole life: two processes that each start two
    BLAS threads on two cores spend their time spinning for each other). Ctrl-C, which a terminal
    sends to the workers too, ends a worker at once: as a KeyboardInterrupt it would end only the
    job at hand, and the worker would run the job queued next to its end, for nothing. A warning
    (the user's data) is one line, as the CLI shows it, not Python's file, line and source; those of
    ``shown`` (run_sweep's) not at all."""
    from ..command import _one_line_warnings   # (a spawned worker starts with Python's format)

    end_with_parent(sweep_pid)
    set_threads(threads)
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    _one_line_warnings("minidl sweep")
    _ignore(shown)


def _ignore(shown):
    """Show no more the warnings whose texts are ``shown``: each job (worker) repeated them."""
    for text in shown:
        warnings.filterwarnings("ignore", re.escape(text) + r"\Z")


def end_with_parent(parent_pid):
    """Start a daemon thread that ends this process (``os._exit``) as soon as its parent, the
    process ``parent_pid``, is gone.

    A sweep process killed with -9 (or by the OOM killer) shuts nothing down: its worker processes
    would wait for jobs (or run theirs) forever, and multiprocessing's resource tracker, which
    ends only when every process holding its pipe has, would live on with them. A spawned child
    has a sentinel that becomes ready when its parent ends (a pipe's EOF on POSIX, the process
    handle on Windows); without one, ``os.getppid()`` is polled (it changes when a POSIX parent dies).
    """
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None and parent.pid == parent_pid else None

    def watch():
        if sentinel is not None:
            multiprocessing.connection.wait([sentinel])
        else:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
        os._exit(1)  # the results are the parent's to write; with it gone there is nothing to finish

    threading.Thread(target=watch, name="minidl-end-with-parent", daemon=True).start()


def run_sweep(configs, results_path, executor=None, max_workers=None, log=print, threads=None, shown=()):
    """Run every config whose key has no result in ``results_path`` yet; append each result
    (or failure) to it as it finishes. Returns the records of all ``configs`` (earlier ones
    read from the file), in the order of ``configs``.

    ``executor``: anything with ``submit(fn, *args)`` returning futures with ``.result()``
    (ThreadPoolExecutor, a Dask Client, ...); not shut down here. ``None``: a local
    ProcessPoolExecutor with ``max_workers`` (default: one per usable CPU) "spawn" processes,
    each with ``threads`` torch/BLAS threads (default: the usable CPUs shared among the workers).
    ``shown``: the texts of warnings the caller has shown (minidl sweep reads the data files before any job); the
    jobs, which read them again, do not repeat them: each worker process did.
    """
    results_path = os.fspath(results_path)
    jobs = _unique_jobs(configs, log)
    records, todo = _resume(jobs, results_path, log)
    if not todo:
        return [records[k] for k in jobs]

    own = executor is None
    if own:
        executor = _local_executor(max_workers, len(todo), log, threads, shown)
    start, futures = time.perf_counter(), []
    try:
        with warnings.catch_warnings():   # (jobs run in this process too: InlineExecutor, threads)
            _ignore(shown)
            futures = [executor.submit(run_job, jobs[k]) for k in todo]
            failures = _collect(futures, todo, jobs, records, results_path, log)
    except BaseException:
        for future in futures:  # the finished ones are on disk; pending ones run with the next sweep
            if hasattr(future, "cancel"):
                future.cancel()
        raise
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
    log(f"ran {len(todo)} job{'s' * (len(todo) != 1)} in {time.perf_counter() - start:.1f} s; results in {results_path}"
        + (f"; {failures} FAILED (their errors are in the file; run the sweep again to retry them)"
           if failures else ""))
    return [records[k] for k in jobs]


def _unique_jobs(configs, log):
    """{job key: complete config}, in the order of ``configs``; a duplicate runs once."""
    jobs = {}
    for config in configs:
        config = complete_config(config)
        jobs.setdefault(job_key(config), config)
    if len(jobs) < len(configs):
        log(f"{len(configs) - len(jobs)} duplicate configurations in the sweep; each runs once")
    return jobs


def _resume(jobs, results_path, log):
    """What the results file already holds: ({key: record} of the jobs that succeeded before on
    the files they read now, [keys of the jobs still to run: new, failed, or their files changed]).
    Prepares the file for appending."""
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
    previous = {}
    if os.path.exists(results_path):       # read first: a file that is not a sweep's is refused untouched
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a truncated last line: drop_truncated_tail says so, once
            previous = {_key(r): r for r in load_results(results_path)}
    drop_truncated_tail(results_path, "that job runs again")
    succeeded = {k: previous[k] for k in jobs if k in previous and not previous[k].get("error")}
    digest = functools.cache(file_digest)   # each file read once, however many records name it
    changed = {k: _changed_inputs(record, digest) for k, record in succeeded.items()}
    records = {k: record for k, record in succeeded.items() if not changed[k]}
    todo = [k for k in jobs if k not in records]
    retried = [k for k in todo if k in previous and k not in succeeded]
    stale = [k for k in succeeded if changed[k]]
    paths = sorted({path for k in stale for path in changed[k]})
    log(f"sweep: {len(jobs)} job{'s' * (len(jobs) != 1)}, {len(records)} already done in {results_path}, {len(todo)} to run"
        + (f" ({len(retried)} of them failed before and are retried)" if retried else "")
        + (f" ({len(stale)} of them ran on files that have changed or gone since: {', '.join(paths)})" if stale else ""))
    return records, todo


def _changed_inputs(record, digest):
    """The files ``record``'s run read whose bytes differ now (or that are gone); [] for a record
    written before records kept their inputs. ``digest``: ``file_digest``, cached across records."""
    return [path for path, old in (record.get("inputs") or {}).items() if digest(path) != old]


def _local_executor(max_workers, n_jobs, log, threads=None, shown=()):
    """A ProcessPoolExecutor of "spawn" workers (no more than jobs), each with ``threads`` BLAS
    and torch threads (default: an equal share of the CPUs), and each ending when this process
    ends, even when it is killed (``end_with_parent``)."""
    cpus = usable_cpus()
    workers = max(1, min(max_workers or cpus, n_jobs))
    threads = threads or max(1, cpus // workers)
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads, os.getpid(), tuple(shown)))
    log(f"running on {workers} local worker process{'es' if workers > 1 else ''}")
    return executor


def _collect(futures, todo, jobs, records, results_path, log):
    """Append each job's record to the results file (and to ``records``) as it finishes, and
    log it; returns the number of failed jobs. ``futures[i]`` runs the job ``todo[i]``."""
    failures = 0
    for n, i in enumerate(_finished_order(futures), 1):
        key = todo[i]
        record = _outcome(futures[i], key, jobs[key])
        # opened for each record: a file replaced meanwhile (a git checkout, an editor's save)
        # gets the line, where a handle kept open would write it into the replaced file's inode
        with open(results_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=_plain) + "\n")  # one write of one complete line
            f.flush()
            os.fsync(f.fileno())
        records[key] = record
        done = f"[{len(jobs) - len(todo) + n}/{len(jobs)}] {describe(jobs[key])}"
        if record.get("error"):
            failures += 1
            log(f"{done}: FAILED: {record['error']}")
        else:
            t = record["test"]
            log(f"{done}: accuracy {t['accuracy']:.3f}  f1 {t['f1']:.3f}  auc {t['auc']:.3f}  "
                f"({record['seconds']:.1f} s, {record['steps']} steps)")
    return failures


def _outcome(future, key, config):
    """The future's result record, or a failure record with the error and its traceback."""
    try:
        return future.result()
    except Exception as e:
        return {"key": key, "config": config, "error": f"{type(e).__name__}: {e}",
                "traceback": "".join(traceback.format_exception(e))}


# ----------------------------------------------------------------------------- summaries

def summarise(results, x="hidden", metrics=METRICS):
    """Mean and std over seeds of the test metrics, one row per (model, ``x`` value).

    Row: ``{"model", x, "settings", "seeds", m, m + "_std" for m in metrics}``. ``settings``
    holds the other config fields that vary within a model (e.g. two learning rates), so
    different settings are never averaged together. The std is the sample standard deviation
    over seeds (ddof=1; 0 with one seed). Failed jobs are skipped.
    """
    groups = _group_seeds([_completed(record) for record in results], x)
    configs = [members[0]["config"] for members in groups.values()]
    varying = _varying_settings(configs, x)
    model_order = list(dict.fromkeys(c["model"] for c in configs))
    rows = [_summary_row(members, x, varying, metrics) for members in groups.values()]
    rows.sort(key=lambda r: (model_order.index(r["model"]), json.dumps(r["settings"], sort_keys=True),
                             _x_order(r[x])))
    return rows


def _completed(record):
    """``record`` with its config's defaults filled in, so that runs from before a setting
    existed group with today's runs of the same settings (as ``_key`` matches them)."""
    try:
        return {**record, "config": complete_config(record["config"])}
    except (KeyError, TypeError, ValueError):
        return record


def _group_seeds(results, x):
    """{(other settings, x value) as JSON: [records]}: the successful runs that differ only in
    their seed, in the order the groups first appear."""
    groups = {}
    for record in results:
        if record.get("error"):
            continue
        config = record["config"]
        rest = {k: v for k, v in config.items() if k not in ("seed", x)}
        groups.setdefault((json.dumps(rest, sort_keys=True), json.dumps(config.get(x))), []).append(record)
    return groups


def _varying_settings(configs, x):
    """The sorted config fields (besides model, seed and ``x``) that take more than one value
    among the ``configs`` of some model."""
    fields = sorted({k for c in configs for k in c} - {"model", "seed", x})
    models = {c.get("model") for c in configs}
    return [k for k in fields
            if any(len({json.dumps(c.get(k), sort_keys=True) for c in configs if c.get("model") == model}) > 1
                   for model in models)]


def _summary_row(members, x, varying, metrics):
    """One row of ``summarise``: the mean and sample std over the seeds in ``members``."""
    config = members[0]["config"]
    row = {"model": config["model"], x: config.get(x), "settings": {k: config.get(k) for k in varying},
           "seeds": len(members)}
    for metric in metrics:
        values = np.array([r["test"].get(metric) for r in members], dtype=np.float64)  # None (not scored): NaN
        row[metric] = float(values.mean())
        row[metric + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return row


def _x_order(value):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (0, value, ())
    if isinstance(value, list):
        return (1, len(value), tuple(value))
    return (2, 0, (str(value),))


def x_label(value):
    """How an x value is printed: ``64``, ``[64, 32]``."""
    return "[" + ", ".join(str(v) for v in value) + "]" if isinstance(value, list) else str(value)


def setting_label(key, value):
    """``lr=0.01``, ``model_options={"radius": 5}``; a file's path shows its name only
    (``embeddings=imdb_sgns_100d.txt``), which is what tells two vector files apart in a table."""
    if isinstance(value, str):
        return f"{key}={os.path.basename(value) if os.sep in value else value}"
    return f"{key}={json.dumps(value)}"


def settings_label(settings, separator=", "):
    """``lr=0.01, embed_dim=8``: a row's ``settings`` as the settings column of ``table_markdown`` (minidl
    plot, minidl serve's Runs view) shows them; a plot's lines and the Runs view's jobs join them with spaces."""
    return separator.join(setting_label(k, v) for k, v in settings.items())


def series_label(row):
    """``gru`` or ``gru lr=0.01``: one line (or set of points) of a plot."""
    return f"{row['model']} {settings_label(row['settings'], ' ')}".strip()


def job_settings(records, x="hidden"):
    """The settings of each record's job that ``summarise`` would show in its row (those besides ``x`` and
    the seed that vary within a model), e.g. ``{"lr": 0.01}``: what tells apart jobs ``describe`` names alike."""
    configs = [_completed(record)["config"] for record in records]
    varying = _varying_settings(configs, x)
    return [{k: config.get(k) for k in varying} for config in configs]


METRIC_NAMES = {"f1": "F1", "auc": "AUC"}   # how tables and plots write a metric; the others under their own name


def plot_prefix(results):
    """Where ``minidl plot`` writes the figures of the sweep in ``results`` by default: beside it, as
    sweep.* for a results.jsonl, else under its own name (two sweeps of one folder, a.jsonl and b.jsonl,
    each replaced the other's sweep.png)."""
    stem = os.path.splitext(os.path.basename(results))[0]
    return os.path.join(os.path.dirname(results) or ".", "sweep" if stem == "results" else stem)


def table_markdown(rows, x="hidden", metrics=("accuracy", "f1", "auc")):
    """A Markdown table of ``summarise`` rows: model, (settings), hidden or architecture,
    seeds, then ``mean ± std`` per metric (the value alone for one seed, whose std is undefined)."""
    if not rows:
        return "(no successful results)"
    x_name = "architecture" if any(isinstance(r[x], list) for r in rows) else x
    with_settings = any(r["settings"] for r in rows)
    header = ["model", *(["settings"] if with_settings else []), x_name, "seeds",
              *(METRIC_NAMES.get(m, m) for m in metrics)]
    align = ["---", *(["---"] if with_settings else []), "---" if x_name == "architecture" else "---:", "---:",
             *("---:" for _ in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        settings = [settings_label(r["settings"])] if with_settings else []
        cells = [r["model"], *settings, x_label(r[x]), str(r["seeds"]),
                 *(f"{r[m]:.3f}" + (f" ± {r[m + '_std']:.3f}" if r["seeds"] > 1 else "") for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the command line

def parse_hidden(text):
    """``"16,32,64"`` -> [16, 32, 64]; ``"[50];[64,32]"`` (or ``"50;64,32"``) -> [[50], [64, 32]]."""
    comma_items(text)   # "16,,32" is refused, not read as [16, 32]
    text = text.strip()
    try:
        if ";" in text or "[" in text:
            parts = [p.strip().strip("[] ") for p in text.split(";") if p.strip()]
            return [[int(v) for v in split_commas(part)] for part in parts]
        return [int(v) for v in split_commas(text)]
    except ValueError:
        raise ValueError(f'cannot read hidden sizes {text!r}: give ints like "16,32,64", or architectures '
                         f'separated by ";" like "[50];[64,32];[64,32,16]"') from None


def parse_seeds(text):
    """``"0,1,2"`` -> [0, 1, 2]; ``"0,,1"`` is refused, not read as [0, 1]."""
    items = comma_items(text)
    try:
        return [int(s) for s in items]
    except ValueError:
        raise ValueError(f'cannot read seeds {text!r}: give whole numbers separated by commas, like "0,1,2"') from None


def parse_settings(items, models=()):
    """``["epochs=3", "attention:model_options={\\"radius\\": 5}"]`` -> (fixed, per_model).
    Values are JSON (``3``, ``0.01``, ``null``, ``[1,2]``), ``none`` (None, as train's options write it),
    else plain strings (``data=imdb``)."""
    fixed, per_model = {}, {}
    for item in items or ():
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {item!r}: write KEY=VALUE, or MODEL:KEY=VALUE for one model")
        try:
            value = None if raw.strip().lower() == "none" else json.loads(raw)   # clip_norm=none: the string
        except ValueError:
            value = raw
        model, colon, key = name.strip().rpartition(":")
        if colon and model not in models:
            raise ValueError(f"--set {item!r}: {model!r} is not among the swept models {list(models)}")
        settings = per_model.setdefault(model, {}) if colon else fixed
        if key in settings:   # the last one silently won
            raise ValueError(f"--set {item!r}: {name.strip()} is already set to {settings[key]!r}; give it once")
        settings[key] = value
    return fixed, per_model


def add_arguments(subparsers):
    """Add ``minidl sweep`` and ``minidl plot`` to the CLI; each sets ``args.run``."""
    sweep = subparsers.add_parser(
        "sweep", help="train a grid of models x hidden sizes x seeds; results appended to a JSONL file (resumable)",
        description="Train every (model, hidden size, seed) and append each result to --results as it "
                    "finishes; each validation check of a running job prints a line on stderr. Run the same "
                    "command again to resume: finished jobs are skipped.")
    from ..cli import _TRAIN_HELP
    from ..command import _call, at_least

    sweep.add_argument("--models", default="rnn,gru", help=f"comma-separated: {', '.join(MODELS)}")
    sweep.add_argument("--hidden", default="16,32,64,96,128",
                       help='hidden sizes "16,32,64", or MLP architectures "[50];[64,32];[64,32,16]"')
    sweep.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    sweep.add_argument("--data", help=f'"synthetic", "imdb", or a CSV/TSV/JSONL table (default: {TrainConfig.data})')
    sweep.add_argument("--epochs", type=at_least(1),
                       help=f"passes over the training reviews in each job, fewer if it stops early "
                            f"(default: {TrainConfig.epochs})")
    sweep.add_argument("--max-length", type=at_least(1),
                       help=f"keep the first N words of each review (default: {TrainConfig.max_length})")
    sweep.add_argument("--device", help=f'"cpu" (NumPy), "torch" or "cuda" (default: {TrainConfig.device})')
    for name in ("text_column", "label_column"):   # as train's: the message of a missing column names them
        sweep.add_argument(as_option(name),
                           help=f"{_TRAIN_HELP[name]} (default: {getattr(TrainConfig, name)})")
    sweep.add_argument("--workers", type=at_least(0),
                       help="local worker processes (default: one per CPU this process may use; 0: in this process, for debugging)")
    sweep.add_argument("--threads", type=at_least(1), metavar="N",
                       help="torch and BLAS threads of each worker, N >= 1; a run's digits depend on it, so this "
                            "repeats a record made with another share (its \"threads\" field) (default: the CPUs "
                            "this process may use // the workers)")
    sweep.add_argument("--results", default="runs/sweep/results.jsonl", help="the JSONL file results go to")
    sweep.add_argument("--set", action="append", default=[], metavar="[MODEL:]KEY=VALUE",
                       help="any other TrainConfig setting, a JSON value (repeatable); "
                            "MODEL: limits it to one model, e.g. attention:model_options='{\"radius\": 5}'")
    sweep.set_defaults(run=main_sweep)

    plot = subparsers.add_parser("plot", help="plot a sweep's results (PNG, SVG) and print its summary table")
    plot.add_argument("--results", default="runs/sweep/results.jsonl", help="a results file from `minidl sweep`")
    plot.add_argument("--out", help="output prefix: writes OUT.png, OUT.svg, OUT.md (fig.png: fig.*); a folder: "
                                    "FOLDER/sweep.* (default: next to --results, sweep.* for results.jsonl, else "
                                    "named after it: a.jsonl -> a.*)")
    plot.add_argument("--x", default="hidden", help="the config field on the x axis")
    plot.add_argument("--metrics", default="accuracy,f1,auc", help="comma-separated test metrics, one panel each")
    plot.add_argument("--title", help='the figure\'s title, "" for none (default: the data, the x axis and the '
                                      'number of seeds)')
    plot.add_argument("--models", help="comma-separated: plot only these models (default: all in the file)")
    plot.set_defaults(run=_call("minidl.experiments.plot", "main_plot"))
    return sweep, plot


def _check_own_data(configs):
    """Read each of the user's own data files once, before any job: a file that cannot train a
    model is one line here, not a failed row per job (the built-in datasets need no check). Returns the
    texts of the warnings shown here (empty texts, undecodable bytes), for run_sweep's jobs not to repeat."""
    read, caught = set(), []
    try:
        with warnings.catch_warnings(record=True) as caught:
            for config in map(TrainConfig.from_dict, configs):
                key = json.dumps([own_files(config), config.text_column, config.label_column, config.label_names])
                if own_files(config) and key not in read:
                    read.add(key)
                    load_splits(config)
    finally:   # also those before a file that is refused
        for warning in caught:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return [str(warning.message) for warning in caught]


def main_sweep(args):
    """``minidl sweep``: returns the exit status (1 if a job failed, 2 for bad arguments)."""
    try:
        models = split_commas(args.models)
        fixed, per_model = parse_settings(args.set, models)
        for name in ("data", "epochs", "max_length", "device", "text_column", "label_column"):
            if (value := getattr(args, name)) is not None:
                if name in fixed:
                    raise ValueError(f"{name} is given both as {as_option(name)} and with --set")
                fixed[name] = value
        configs = grid(models, parse_hidden(args.hidden), parse_seeds(args.seeds),
                       per_model=per_model, **fixed)
        check_writable(args.results, "--results")   # before the first job, not after it
        shown = _check_own_data(configs)
    except (ValueError, MinidlError) as e:
        print(f"minidl sweep: error: {e}", file=sys.stderr)
        return 2
    executor = InlineExecutor() if args.workers == 0 else None
    if executor is not None and args.threads:
        set_threads(args.threads)  # the jobs run in this process
    try:
        results = run_sweep(configs, args.results, executor=executor, max_workers=args.workers or None,
                            threads=args.threads, shown=shown)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished jobs are in {args.results}; run the same command again to resume")
        return 130
    print()
    print(table_markdown(summarise(results)))
    if summarise(load_results(args.results)):   # the whole file, as plot reads it: none there, and plot refuses it
        print(f"\nplot it: minidl plot --results {shlex.quote(args.results)} --out "
              f"{shlex.quote(plot_prefix(args.results))}")
    return 1 if any(r.get("error") for r in results) else 0

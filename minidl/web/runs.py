"""The Runs view: a folder of training runs and sweeps (``minidl serve --runs DIR``), read again
at every request so that a run still training shows its new evaluations.

What is found under DIR (at most MAX_DEPTH folders down; hidden files, such as the temporary
files of an atomic write, are not looked at):

* a **run**: a ``results.json`` of ``minidl train --out`` (any ``*.json`` with a "config" and a
  "history", e.g. a renamed copy), or a ``last.npz`` checkpoint newer than the results.json
  beside it (or alone): a run still training, whose evaluations so far are in the checkpoint's
  metadata (only that member of the archive is read, never the weights, never a pickle);
* a **sweep**: a ``*.jsonl`` of ``minidl sweep``, one job a line -- its jobs' curves and the
  table of ``minidl.experiments.sweep.summarise`` (mean ± std over seeds);
* a **plot**: a ``*.png`` or ``*.svg`` (sweep plots, ``minidl curves`` pictures).

    RunsFolder("runs").listing() -> {"root", "runs": [{"path", "label", "source", "finished" (False: from
                                      last.npz, still training or stopped before writing results.json),
                                      "history": [{"step", "epoch", "loss", "accuracy", "train_loss",
                                                   "train_accuracy", "test_loss", "test_accuracy"}], "test"}],
                                      "sweeps": [{"path", "jobs": [{"label", "settings", "history", "test",
                                                                    "error"}],
                                                  "summary": [{..., "settings", "settings_label"}]}],
                                      "plots": [{"path": "sub/sweep.png", "version": mtime in ns}, ...],
                                      "skipped": [{"path", "why"}]}
    RunsFolder("runs").file("sub/sweep.png") -> (bytes, content type)

A file that cannot be read (half written, malformed, not a run) is listed under "skipped" with
the reason and the rest is shown; a sweep's line being written (the last, without its newline) is
left out with a note. Files are parsed again only when their size or time stamp changed.
Every path stays inside DIR: ``file`` refuses absolute paths, ``..``, hidden names, links that
lead out, and anything but a plot (``OutsideError``, a 403).
"""
from __future__ import annotations

import json
import os
import zipfile

from ..errors import MinidlError
from ..experiments.curves import CURVE_KEYS as DRAWN, chosen_on_test
from ..experiments.sweep import describe, job_settings, one_per_job, scan_records, settings_label, summarise
from ..io import finite, npz_meta

MAX_DEPTH = 4                     # folders below DIR that are searched
MAX_FILES = 2000                  # entries looked at per listing
MAX_BYTES = 20_000_000           # the largest plot served, and .json or .jsonl read
PLOTS = {".png": "image/png", ".svg": "image/svg+xml"}
CURVE_KEYS = ("step", *DRAWN)    # what minidl curves draws, and the step of each point


class OutsideError(MinidlError, PermissionError):
    """A path that would leave the runs folder, or a file the view does not serve."""


class RunsFolder:
    """The runs under ``root`` (see the module docstring)."""

    def __init__(self, root):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            what = "a file, not a folder" if os.path.exists(root) else "no such folder"
            raise MinidlError(f"--runs {root}: {what}; give the folder that minidl train --out and "
                              f"minidl sweep --results write into (e.g. runs)")
        self.cache = {}           # path -> ((size, mtime_ns), parsed)

    # --- the listing ---
    def listing(self):
        found = {"root": self.root, "runs": [], "sweeps": [], "plots": [], "skipped": []}
        seen = 0
        for folder, names in self._folders():
            shown = names[:max(0, MAX_FILES - seen)]     # at most MAX_FILES files in all
            seen += len(names)
            # a run folder shows one of its two files: last.npz while it trains, then results.json
            both = "last.npz" in shown and "results.json" in shown
            hidden = ("results.json" if _newer(folder) else "last.npz") if both else None
            for name in shown:
                if name != hidden:
                    self._add(found, folder, name)
        if seen > MAX_FILES:   # they were left out without a word
            found["skipped"].append({"path": ".", "why": f"{seen - MAX_FILES:,} more files past the first {MAX_FILES:,}"
                                                         ": not listed; give --runs a folder nearer the runs"})
        return found

    def _folders(self):
        """(folder, sorted visible file names it may show) of each folder down to MAX_DEPTH. Other files do not
        count towards MAX_FILES (2,000 of them hid every run)."""
        for folder, subfolders, files in os.walk(self.root):
            depth = os.path.relpath(folder, self.root).count(os.sep) + (folder != self.root)
            subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")) if depth < MAX_DEPTH else []
            yield folder, sorted(f for f in files if not f.startswith(".") and _shown(f))

    def _add(self, found, folder, name):
        path = os.path.join(folder, name)
        relative = os.path.relpath(path, self.root).replace(os.sep, "/")
        ext = os.path.splitext(name)[1].lower()
        reader = _read_checkpoint if name == "last.npz" else {".json": _read_run, ".jsonl": _read_sweep}.get(ext)
        try:
            self.inside(relative)               # a link that leads out of the folder is not read
            if ext in PLOTS:                    # the version changes when the plot is redrawn
                found["plots"].append({"path": relative, "version": os.stat(path).st_mtime_ns})
                return
            item = self._parsed(path, reader)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, zipfile.BadZipFile) as e:
            found["skipped"].append({"path": relative, "why": _one_line(e)})
            return
        found["skipped"].extend({"path": relative, "why": note} for note in item.pop("notes", []))
        found["sweeps" if ext == ".jsonl" else "runs"].append({"path": relative, **item})

    def _parsed(self, path, reader):
        status = os.stat(path)
        if status.st_size > MAX_BYTES and not path.endswith(".npz"):
            raise ValueError(f"over {MAX_BYTES // 1_000_000} MB: not read")
        stamp = (status.st_size, status.st_mtime_ns)
        cached = self.cache.get(path)
        if cached is None or cached[0] != stamp:
            cached = self.cache[path] = (stamp, reader(path))
        return json.loads(json.dumps(cached[1]))      # a copy: the caller pops its notes

    # --- one plot ---
    def file(self, relative):
        """(bytes, content type) of the plot at ``relative`` (a path inside the folder, with /)."""
        path = self.inside(relative)
        ext = os.path.splitext(path)[1].lower()
        if ext not in PLOTS:
            raise OutsideError(f"{relative}: the Runs view serves plots only (.png, .svg)")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no plot {relative} in the runs folder; /api/runs lists them")
        if os.path.getsize(path) > MAX_BYTES:
            raise OutsideError(f"{relative} is over {MAX_BYTES // 1_000_000} MB; open it from the disk")
        with open(path, "rb") as f:
            return f.read(), PLOTS[ext]

    def inside(self, relative):
        """The real path of ``relative``, refused unless it lies inside the folder."""
        parts = relative.replace("\\", "/").split("/")
        if (not relative or relative.startswith("/") or "\0" in relative
                or any(p in ("", ".", "..") or p.startswith(".") for p in parts)):
            raise OutsideError(f"path={relative!r}: give a path inside the runs folder as /api/runs lists it "
                               f"(no leading /, no . or .. parts, no hidden names, no NUL)")
        path = os.path.realpath(os.path.join(self.root, *parts))
        if os.path.commonpath([path, self.root]) != self.root:
            raise OutsideError(f"path={relative!r} leads out of the runs folder (a link?); it is not served")
        return path


# --- readers: each returns a JSON-able dict, or raises with what is wrong ---------------------
def _read_run(path):
    with open(path, encoding="utf-8") as f:
        result = json.load(f)                       # a half-written file raises here
    if not (isinstance(result, dict) and isinstance(result.get("config"), dict)
            and isinstance(result.get("history"), list)):
        raise ValueError("not a training run (no config and history): minidl train --out writes results.json")
    return {"label": _label(result["config"]), "source": "results.json", "finished": True,
            "history": _curves(result["history"], result["config"]), "test": finite(result.get("test") or {})}


def _read_checkpoint(path):
    """The history so far of a run still training, from its last.npz's metadata alone."""
    meta = npz_meta(path)
    config, loop = meta.get("config"), meta.get("loop") or {}
    if not isinstance(config, dict):
        raise ValueError("a checkpoint without a training config (not minidl train's)")
    return {"label": _label(config), "source": "last.npz", "finished": False,
            "history": _curves(loop.get("history") or [], config), "test": {}}


def _read_sweep(path):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    # one record per job, as minidl plot reads them, and a note for each line that is no record (the last one
    # may be being written)
    found, bad, truncated = scan_records(lines)
    records = one_per_job(found)
    notes = [f"line {number} skipped: {_one_line(error)}" for number, error in bad]
    notes += [f"line {len(lines)} is being written, not shown yet"] * bool(truncated)
    if not records:
        raise ValueError(notes[0] if len(notes) == 1 else "an empty sweep file" if not notes
                         else "not a sweep of minidl sweep: no line is a sweep record")
    jobs = [_job(r, settings) for r, settings in zip(records, job_settings(records))]
    summary = summarise([r for r in records if isinstance(r.get("test"), dict)])
    for row in summary:
        row["settings_label"] = settings_label(row["settings"])     # the cell of minidl plot's table
    return {"jobs": jobs, "summary": finite(summary), "notes": notes}


def _job(record, settings):
    """A job of a sweep; ``settings``: those that tell it apart from jobs of its model, hidden size and seed
    (two sweeps of one file with --set lr=0.001 and lr=0.01), named in its label after describe's."""
    config = record["config"]
    try:
        label = describe(config)
    except KeyError:
        label = str(config.get("model", "?"))
    label = f"{label} {settings_label(settings, ' ')}".strip() + (", best chosen on test" * chosen_on_test(config))
    return {"label": label, "settings": finite(settings),
            "history": _curves(record.get("history") or [], config), "test": finite(record.get("test") or {}),
            "error": _one_line(record["error"]) if record.get("error") else None}


# --- helpers ------------------------------------------------------------------------------------
def _shown(name):
    """Whether the view reads the file ``name``: a run (results.json, last.npz), a sweep (.jsonl), a plot."""
    return name == "last.npz" or os.path.splitext(name)[1].lower() in (".json", ".jsonl", *PLOTS)


def _newer(folder):
    """Whether the folder's last.npz was written after its results.json (a run going on, or again)."""
    try:
        last, results = (os.stat(os.path.join(folder, name)).st_mtime_ns for name in ("last.npz", "results.json"))
    except OSError:
        return False
    return last > results


def _label(config):
    options = config.get("model_options") if isinstance(config.get("model_options"), dict) else {}
    extra = " causal" if options.get("causal") else ""
    return (f"{config.get('model', '?')}{extra} hidden={json.dumps(config.get('hidden'))} "
            f"seed={config.get('seed', '?')}" + (", best chosen on test" if chosen_on_test(config) else ""))


def _curves(history, config=None):
    """Each evaluation's numbers for the curves (the rest, such as confusion matrices, left out). A
    run with no validation split (--validation 0) chose its best on the test split, so what its
    history holds as validation numbers are the test's: shown as the test curve."""
    rows = [{k: finite(h[k]) for k in CURVE_KEYS if k in h} for h in history if isinstance(h, dict)]
    if chosen_on_test(config):
        for row in rows:
            for metric in ("loss", "accuracy"):
                row.setdefault(f"test_{metric}", row.pop(metric, None))
    return rows


def _one_line(error):
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."

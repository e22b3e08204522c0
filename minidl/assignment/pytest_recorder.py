"""A pytest plugin that writes every test's outcome and failure message to a JSON file.

``minidl grade`` runs pytest in a subprocess, in the copy being graded, and loads this file
by its path (it imports nothing from minidl, so a student copy whose package does not even
import still gets a report):

    python -c "<load this file>; run(['results.json', pytest args...])"

The JSON is {"tests": {nodeid: {"outcome", "message", "seconds"}}, "collection_errors":
{path: message}, "collected": [nodeid], "collecting": path, "running": nodeid, "finished": bool},
rewritten atomically after every test, so a run that is killed on a timeout still tells which
tests had finished, which did not, and which one was running, or which test file was being
collected (importing it runs the graded code, which may never finish loading). On SIGTERM,
with which grade stops a run, the stack of the code it stopped goes to results.json.stack.

Every test runs with torch's autograd switched off (``torch.set_grad_enabled(False)`` before
each one): the student writes backward passes by hand, and one that calls
``torch.autograd.grad`` over a forward of torch ops must fail, not earn the task's points.
Its entry points refuse too (``torch.autograd.grad`` and ``backward``, ``Tensor.backward``,
``torch.func``'s transforms), since a helper in another file could switch it on again with
``torch.enable_grad()`` (that scored full marks). minidl itself never uses torch's autograd
(its torch backend stores plain tensors).

What this cannot do: the student's code runs in this process, beside this plugin, so code
that sets out to can still reach the plugin's objects or the reference values' file (see
the README's section on grading); the grading is a check of honest work, not a sandbox.
"""
from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
import re
import signal
import sys


def _message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    if isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
        return str(report.longrepr[-1])
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def _torch_autograd_off():
    """Switch torch's autograd off for the test about to run (a test before it may have switched it on)."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return
    import torch

    torch.set_grad_enabled(False)
    if not getattr(torch, "_minidl_grading", False):
        torch._minidl_grading = True
        for owner, names in ((torch.autograd, ("grad", "backward")), (torch.Tensor, ("backward",)),
                             (torch.func, ("grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian"))):
            for name in names:
                setattr(owner, name, _refused(f"{owner.__name__}.{name}"))


def _refused(name):
    def refuse(*args, **kwargs):
        raise RuntimeError(f"{name}: torch's autograd is off while grading; write the backward by hand")
    return refuse


class Recorder:
    def __init__(self, path):
        self.path = path
        self.data = {"tests": {}, "collection_errors": {}, "finished": False, "collected": []}

    def _write(self):
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    def pytest_collectreport(self, report):
        if report.failed:
            lines = str(report.longrepr).strip().splitlines()
            errors = [line[2:].strip() for line in lines if line.startswith("E ")]
            message = errors[-1] if errors else (lines[-1] if lines else "")
            where = ([line for line in errors if line.startswith('File "')]  # a syntax error: which file and line
                     or [f"{m[1]}, line {m[2]}" for line in lines   # else the innermost frame in the graded minidl/
                         if (m := re.match(r"(minidl/\S+\.py):(\d+): in ", line))])   # (pytest: relative to it)
            self.data["collection_errors"][report.nodeid] = f"{message} ({where[-1]})" if where else message
            self._write()

    def pytest_collectstart(self, collector):
        import pytest

        if isinstance(collector, pytest.Module):   # a test file: importing it runs the graded code
            self.data["collecting"] = collector.nodeid
            self._write()

    def pytest_collection_finish(self, session):
        self.data.pop("collecting", None)
        self.data["collected"] = [item.nodeid for item in session.items]   # so a test a time limit stopped
        self._write()                                                       # is not simply missing

    def pytest_runtest_setup(self, item):
        _torch_autograd_off()
        self.data["running"] = item.nodeid   # what ran when a time limit stopped the run
        self._write()

    def pytest_runtest_logreport(self, report):
        entry = self.data["tests"].setdefault(report.nodeid, {"outcome": "passed", "message": "", "seconds": 0.0})
        entry["seconds"] += report.duration
        if entry["outcome"] == "passed" and (report.failed or report.skipped):
            entry["outcome"] = "skipped" if report.skipped else ("failed" if report.when == "call" else "error")
            entry["message"] = _message(report)
        if report.when == "teardown":
            self._write()

    def pytest_sessionfinish(self, session, exitstatus):
        self.data["finished"] = True
        self._write()


def run(argv):
    """argv: [results.json, pytest arguments...]; returns pytest's exit code."""
    import pytest

    with open(f"{argv[0]}.stack", "w") as stack:
        if hasattr(faulthandler, "register"):   # (not on Windows) chain: then SIGTERM ends the process as usual
            faulthandler.register(signal.SIGTERM, stack, all_threads=False, chain=True)
        return int(pytest.main(argv[1:], plugins=[Recorder(argv[0])]))

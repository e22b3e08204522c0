"""``minidl grade [DIR]``: run an assignment's grading tests on the code in DIR and score each task.

DIR is a student copy (its ``assignment.toml`` says which assignment it is) or, with
``--assignment NAME``, any tree that holds ``assignments/NAME/manifest.toml`` and ``minidl/``
(the repository itself: the reference, which must score full marks).

pytest runs once, in a subprocess whose working directory and first ``sys.path`` entry are
DIR, so the tests import DIR's ``minidl`` and not an installed one (``checks`` verifies it);
a small plugin (``pytest_recorder``) writes each test's outcome and message to a JSON file.

Scoring: all or nothing per task. A task earns its points only when every one of its tests
passes; a wrong backward therefore loses exactly the points of the task it belongs to (the
tasks are chosen so that no task's tests call another task's code). For each failed task the
report shows its first failing check, in the words of the grading tests' assertion messages.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .make import MARKER
from .manifest import ASSIGNMENTS, MANIFEST, AssignmentError, known_assignments, load_manifest, read_toml

RECORDER = Path(__file__).with_name("pytest_recorder.py")
_BOOT = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('minidl_grade_recorder', "
         "sys.argv[1]); module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
         "sys.exit(module.run(sys.argv[2:]))")


@dataclass
class CheckResult:
    id: str
    outcome: str          # passed, failed, error, skipped, not run
    message: str = ""
    seconds: float = 0.0


@dataclass
class TaskResult:
    number: int
    title: str
    points: int
    score: int
    tests: list = field(default_factory=list)

    @property
    def passed(self):
        return self.score == self.points

    def first_failure(self):
        return next((t for t in self.tests if t.outcome != "passed"), None)


def locate(directory, assignment=None):
    """The manifest of the assignment to grade in ``directory``; explains what is wrong otherwise."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise AssignmentError(f"{directory} is not a folder")
    marker = directory / MARKER
    if assignment is None:
        if not marker.is_file():
            known = known_assignments(directory)
            hint = (f"; to grade the assignments here, pass --assignment ({' | '.join(known)})" if known
                    else "; make one with: minidl assignment make NAME --out DIR")
            raise AssignmentError(f"{directory} is not a student copy (it has no {MARKER}){hint}")
        assignment = read_toml(marker).get("assignment")
        if not isinstance(assignment, str):
            raise AssignmentError(f"{marker} does not name an assignment (assignment = \"...\")")
    folder = directory / ASSIGNMENTS / assignment
    if not (folder / MANIFEST).is_file():
        known = known_assignments(directory)
        raise AssignmentError(f"{directory} has no {ASSIGNMENTS}/{assignment}/{MANIFEST}"
                              + (f"; it has: {', '.join(known)}" if known else ""))
    if not (directory / "minidl" / "__init__.py").is_file():
        raise AssignmentError(f"{directory} has no minidl/ package to grade")
    return load_manifest(folder, directory)


def _node_ids(manifest, spec):
    """The pytest node id prefix of a manifest test spec, relative to the graded folder."""
    path, sep, name = spec.partition("::")
    rel = (manifest.folder / path).relative_to(manifest.root).as_posix()
    return rel + (f"::{name}" if sep else "")


def _matches(nodeid, prefix):
    return nodeid == prefix or nodeid.startswith(prefix + "::") or nodeid.startswith(prefix + "[")


def run_tests(manifest, tasks, timeout):
    """Run pytest on the tasks' test files in the graded folder; returns (recorded JSON, pytest's output)."""
    if importlib.util.find_spec("pytest") is None:
        raise AssignmentError("grading needs pytest: pip install pytest (or make install, which installs .[dev])")
    root = manifest.root
    paths = sorted({_node_ids(manifest, spec) for task in tasks for spec in task.tests})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.update(PYTHONDONTWRITEBYTECODE="1", MINIDL_GRADE_ROOT=str(root),  # no __pycache__ left in the copy
               PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    with tempfile.TemporaryDirectory(prefix="minidl-grade-") as tmp:
        results = Path(tmp) / "results.json"
        command = [sys.executable, "-c", _BOOT, str(RECORDER), str(results), "-q", "-p", "no:cacheprovider",
                   "-o", "addopts=", "--continue-on-collection-errors", "--rootdir", str(root), *paths]
        try:
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as e:
            output = f"grading stopped after {timeout} s (--timeout): {_text(e.stdout)}{_text(e.stderr)}"
        recorded = json.loads(results.read_text()) if results.is_file() else {}
    return recorded, output


def _text(data):
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def score(manifest, tasks, recorded, output):
    """One TaskResult per task: its tests' outcomes in manifest order, and its points if all passed."""
    tests, errors = recorded.get("tests", {}), recorded.get("collection_errors", {})
    why_not_run = ("the tests did not run: " + (output.strip().splitlines() or ["pytest gave no output"])[-1]
                   if not recorded.get("finished") else "")
    results = []
    for task in tasks:
        found = []
        for spec in task.tests:
            prefix = _node_ids(manifest, spec)
            ran = [CheckResult(nodeid, **entry) for nodeid, entry in tests.items() if _matches(nodeid, prefix)]
            if not ran:
                file = prefix.partition("::")[0]
                message = errors.get(file) or why_not_run or "no test matched this name in the grading file"
                ran = [CheckResult(prefix, "not run", f"could not run {file}: {message}" if file in errors
                                  else message)]
            found += ran
        ok = all(t.outcome == "passed" for t in found)
        results.append(TaskResult(task.number, task.title, task.points, task.points if ok else 0, found))
    return results


def plain(message, limit=400):
    """A failure message as a student should read it: without 'AssertionError: ', module paths, pytest's
    echo of the assert statement, or anything said before a stub's 'implement this'."""
    text = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", message.strip())   # minidl.autograd.function.ShapeError -> ShapeError
    if text.startswith("AssertionError: "):
        text = text[len("AssertionError: "):]
    if "implement this (" in text:
        text = "NotImplementedError: " + re.sub(r" \(input shapes: [^\n]*\)$", "", text[text.index("implement this ("):])
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("assert ")][:3]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_report(manifest, results, seconds):
    width = max(len(f"{r.score}/{r.points}") for r in results)
    lines = [f"{manifest.name}: {manifest.title}", f"graded: {manifest.root}"]
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        lines.append(f"  task {r.number}  {f'{r.score}/{r.points}':>{width}}  {mark}  {r.title}")
        failure = r.first_failure()
        if failure is not None:
            failing = sum(t.outcome != "passed" for t in r.tests)
            lines.append(f"      {failing} of {len(r.tests)} checks failed; the first, {failure.id.split('::')[-1]}:")
            lines += [f"        {line}" for line in plain(failure.message).splitlines()]
    total, points = sum(r.score for r in results), sum(r.points for r in results)
    lines.append(f"total {total}/{points} ({len([r for r in results if r.passed])} of {len(results)} tasks "
                 f"passed, {seconds:.0f} s; a task earns its points only when all its checks pass)")
    return "\n".join(lines)


def report_json(manifest, results, seconds):
    return {"assignment": manifest.name, "title": manifest.title, "graded": str(manifest.root),
            "score": sum(r.score for r in results), "max_score": sum(r.points for r in results),
            "scoring": "all or nothing per task: a task earns its points only when all its tests pass",
            "seconds": round(seconds, 1),
            "tasks": [{**{k: v for k, v in asdict(r).items() if k != "tests"}, "passed": r.passed,
                       "first_failure": plain(r.first_failure().message) if r.first_failure() else None,
                       "tests": [asdict(t) for t in r.tests]} for r in results]}


def grade(directory=".", assignment=None, tasks=None, timeout=600):
    """Grade ``directory``; returns (manifest, [TaskResult], seconds)."""
    manifest = locate(directory, assignment)
    selected = [manifest.task(n) for n in tasks] if tasks else list(manifest.tasks)
    start = time.perf_counter()
    recorded, output = run_tests(manifest, selected, timeout)
    return manifest, score(manifest, selected, recorded, output), time.perf_counter() - start


def main(args):
    from ..io import atomic_path

    manifest, results, seconds = grade(args.directory, args.assignment, args.task, args.timeout)
    print(format_report(manifest, results, seconds))
    if args.json:
        with atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report_json(manifest, results, seconds), f, indent=1)
    return 0

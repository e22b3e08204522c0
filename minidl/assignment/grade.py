"""``minidl grade [DIR]``: run an assignment's grading tests on the code in DIR and score each task.

DIR is a student copy (its ``assignment.toml`` says which assignment it is) or, with
``--assignment NAME``, any tree that holds ``assignments/NAME/manifest.toml`` and ``minidl/``
(the repository itself: the reference, which must score full marks). With ``--reference`` (an
instructor's grade) DIR's ``minidl/`` is graded in the instructor's copy of the assignment, as
``--submissions`` grades each student (``batch.trusted_tree``): DIR's own grading tests, manifest
and conftest.py are not used. Without it, a copy is graded with its own: a self-check, and the report says so.

pytest runs in a subprocess whose working directory and first ``sys.path`` entry are DIR, so
the tests import DIR's ``minidl`` and not an installed one (``checks`` verifies it); a small
plugin (``pytest_recorder``) writes each test's outcome and message to a JSON file. A test that
ends that process fails, and the tests after it run in a new one (``run_tests``).

Reference values: the forward checks compare with values computed by the reference code,
the answers themselves, so a student copy never holds them. ``grade`` takes them from
``--reference`` (a repository, an assignment folder, its ``grading/`` folder or the JSON file)
or else from the assignment's ``grading/expected.json`` in the tree of the minidl that grades
(the instructor's repository; see ``find_reference``). A copy of the file goes to the pytest
run through ``MINIDL_GRADE_REFERENCE``, from a temporary folder outside the graded one.
Without reference values (a student grading their own copy) the checks that need them fail
with the outcome "no reference", the report says so, and every other check still runs.

Scoring: all or nothing per task. A task earns its points only when every one of its tests
passes; a wrong backward therefore loses exactly the points of the task it belongs to (the
tasks are chosen so that no task's tests call another task's code). The source of each
target must also keep the task's rules (``rules``: no torch, no ``np.`` in an op), which
the tests cannot see. For each failed task the report shows its first failing check, in the
words of the grading tests' assertion messages (the JSON report: the whole message).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..io import check_replaceable, check_writable, json_keys, write_text
from .manifest import (ASSIGNMENTS, EXPECTED, GRADE_ROOT, MANIFEST, MARKER, MINIDL_ROOT, REFERENCE, AssignmentError,
                       known_assignments, load_manifest, read_toml)
from .rules import task_findings

RECORDER = Path(__file__).with_name("pytest_recorder.py")
_BOOT = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('minidl_grade_recorder', "
         "sys.argv[1]); module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
         "sys.exit(module.run(sys.argv[2:]))")


MAX_SECONDS = 86_400   # a day: a longer limit overflowed the process timers (--timeout 1e7 was a traceback)
TEST_SECONDS = 60      # one grading test's limit (--test-timeout); the references' take about a second each
TOO_SLOW = "too slow"  # the "exit status" of a pytest run stopped because one test ran past --test-timeout
_POLL = 0.2            # how often grading looks at which test runs
STILL_RUNNING = 10     # after this many seconds of one test, grading one copy says which test still runs
NO_REFERENCE = "no reference"   # the outcome of a check that needs the reference values, run without them
NOT_RUN = "not run"             # the outcome of a check that did not run (a time limit, a hung test of its task)


@dataclass
class CheckResult:
    id: str
    outcome: str          # passed, failed, error, skipped, not run, no reference
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
        """The first check that did not pass, preferring one that failed (it says what is wrong) over one that did
        not run, and that over one that lacked the reference."""
        rank = {NOT_RUN: 1, NO_REFERENCE: 2}
        return min((t for t in self.tests if t.outcome != "passed"), key=lambda t: rank.get(t.outcome, 0), default=None)

    @property
    def lacking_reference(self):
        return sum(t.outcome == NO_REFERENCE for t in self.tests)


def locate(directory, assignment=None):
    """The manifest of the assignment to grade in ``directory``; explains what is wrong otherwise."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise AssignmentError(f"{directory} is not a folder")
    marker = directory / MARKER
    if assignment is None:
        if not marker.is_file():
            known = known_assignments(directory)
            copy = next((folder for folder in directory.parents if (folder / MARKER).is_file()), None)
            hint = (f"; to grade the assignments here, pass --assignment ({' | '.join(known)})" if known
                    else f"; it lies inside the student copy {copy}: run minidl grade {copy}" if copy
                    else "; make one with: minidl assignment make NAME --out DIR")
            raise AssignmentError(f"{directory} is not a student copy (it has no {MARKER}){hint}")
        assignment = read_toml(marker).get("assignment")
        if not isinstance(assignment, str):
            raise AssignmentError(f"{marker} does not name an assignment (assignment = \"...\")")
    folder = directory / ASSIGNMENTS / assignment
    if not (folder / MANIFEST).is_file():
        known = known_assignments(directory)
        raise AssignmentError(f"{directory} has no {ASSIGNMENTS}/{assignment}/{MANIFEST}"
                              + (f"; it has: {', '.join(known)}" if known else "; grade a folder that holds it: the "
                                 "repository (minidl grade REPOSITORY --assignment NAME) or a student copy"))
    if not (directory / "minidl" / "__init__.py").is_file():
        raise AssignmentError(f"{directory} has no minidl/ package to grade")
    return load_manifest(folder, directory)


def _reference_in(path, name):
    """The reference file that ``path`` (the JSON file, a grading/ or assignment folder, a repository) names."""
    path = Path(path)
    candidates = (path, path / ASSIGNMENTS / name / "grading" / EXPECTED, path / "grading" / EXPECTED, path / EXPECTED)
    return next((c for c in candidates if c.is_file()), None)


def find_reference(manifest, reference=None):
    """The file of reference values to grade ``manifest``'s assignment with, or None when there is none.

    ``reference`` given: that file, or the assignment's in that folder (an AssignmentError if it holds
    none). Otherwise the assignment's ``grading/expected.json`` in the tree of the minidl that grades
    (the instructor's repository, or an autograder's own tree: the reference is as trusted as the grading
    code), then in the current folder and the graded tree unless they were made by ``minidl assignment
    make`` (they have ``assignment.toml``): a student copy never grades itself with a file planted in it."""
    if reference is not None:
        found = _reference_in(reference, manifest.name)
        if found is None:
            raise AssignmentError(f"--reference {reference}: no {EXPECTED} for {manifest.name} there; give the "
                                  f"repository, its {ASSIGNMENTS}/{manifest.name} folder, the grading/ folder or "
                                  f"the file")
        _check_reference(found, manifest, reference)
        return found.resolve()
    for root, trusted in ((MINIDL_ROOT, True), (Path.cwd(), False), (manifest.root, False)):
        path = root / ASSIGNMENTS / manifest.name / "grading" / EXPECTED
        if path.is_file() and (trusted or not (root / MARKER).is_file()):
            return path.resolve()
    return None


def _check_reference(path, manifest, given):
    """Refuse, before grading, a --reference file without the reference values of every case of
    ``manifest``'s grading files: graded with it, a correct copy would score 0."""
    try:
        cases = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        cases = error
    wanted = {name for test in (manifest.folder / "grading").glob("test_*.py")
              for name in re.findall(r"^def case_(\w+)\(", test.read_text(encoding="utf-8"), re.M)}
    missing = sorted(wanted - set(cases)) if isinstance(cases, dict) else None
    if missing is None or missing:
        what = f"it lacks the cases {', '.join(missing)}" if missing else "it is not a JSON object of reference values"
        raise AssignmentError(f"--reference {given}: {what} of {manifest.name}; give that assignment's "
                              f"grading/{EXPECTED} (minidl assignment expected {manifest.name} writes it)")


def _node_ids(manifest, spec):
    """The pytest node id prefix of a manifest test spec, relative to the graded folder."""
    path, sep, name = spec.partition("::")
    rel = (manifest.folder / path).relative_to(manifest.root).as_posix()
    return rel + (f"::{name}" if sep else "")


def _matches(nodeid, prefix):
    return nodeid == prefix or nodeid.startswith(prefix + "::") or nodeid.startswith(prefix + "[")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside, SIGTERM (``kill``, a job scheduler's stop) interrupts as Ctrl-C does, so the gradings under way are
    killed on the way out; by default Python died at once and left the student's code running. Only the main
    thread can take signals: elsewhere nothing changes."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_tests(manifest, tasks, timeout, reference=None, test_timeout=TEST_SECONDS, timeout_option="--timeout",
              log=None):
    """Run pytest on the tasks' test files in the graded folder; returns (recorded JSON with pytest's
    "exit_status" added, None after the time limit; pytest's output). ``reference``: the reference
    values' file, copied to a temporary folder for the run (None: none). A test that ends the process
    (os._exit, a crash) or runs longer than ``test_timeout`` seconds fails, and the tests after it run
    in a new process within the time left: one endless loop in task 4 zeroed tasks 5 and 6 too. After
    one that ran too long, the other tests of its task are not run (it has failed): a hung test each
    spent ``test_timeout`` of the one time limit, and the tasks after a few of them "did not run". So does a
    test file whose import (the graded code loading) runs that long: its tests fail, the other files run anew.
    ``timeout_option``: the option that set ``timeout``, which the report names; ``log(message)`` hears of a test
    still running after STILL_RUNNING seconds (a silent terminal for up to ``test_timeout`` looked hung)."""
    if importlib.util.find_spec("pytest") is None:
        raise AssignmentError("grading needs pytest: pip install pytest (or make install, which installs .[dev])")
    root = manifest.root
    # a deleted grading file: its task fails (score names it), the others run (pytest stopped for all of them)
    paths = sorted({node for task in tasks for spec in task.tests
                    if (root / (node := _node_ids(manifest, spec)).partition("::")[0]).is_file()})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.update(PYTHONDONTWRITEBYTECODE="1", **{GRADE_ROOT: str(root)},  # no __pycache__ left in the copy
               PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    deadline, merged = time.monotonic() + timeout, {"tests": {}, "collection_errors": {}, "collected": []}
    with tempfile.TemporaryDirectory(prefix="minidl-grade-") as tmp:
        env[REFERENCE] = shutil.copyfile(reference, Path(tmp) / EXPECTED).as_posix() if reference else ""
        while True:
            recorded, output = _pytest(root, paths, env, Path(tmp) / "results.json", deadline, test_timeout, log)
            output = _stopped(timeout, timeout_option) if recorded["exit_status"] is None else output
            merged = {**recorded, "tests": {**merged["tests"], **recorded.get("tests", {})},
                      "collection_errors": {**merged["collection_errors"], **recorded.get("collection_errors", {})},
                      "collected": list(dict.fromkeys(merged["collected"] + recorded.get("collected", [])))}
            stopped, status = recorded.get("running"), recorded["exit_status"]
            if recorded.get("unloaded"):   # a test file whose import was stopped (``_not_loaded``): the others run
                paths = _other_files(paths, recorded["unloaded"])
            elif recorded.get("finished") or not stopped or status is None:
                break
            else:
                why = (f"this test ran longer than {test_timeout:g} s (--test-timeout) and was stopped: an endless "
                       f"loop, or code far too slow" if status == TOO_SLOW else f"the grading process ended (exit "
                       f"status {status}) while this test ran: os._exit, a crash or a signal")
                merged["tests"][stopped] = {"outcome": "failed",
                                            "message": why + "; the tests after it ran in a new process"}
                if status == TOO_SLOW:
                    merged["tests"].update(_rest_of_task(manifest, tasks, stopped, merged, test_timeout))
                paths = [node for node in recorded.get("collected", []) if node not in merged["tests"]]
            if not paths:
                break
            if time.monotonic() >= deadline:   # the rest did not run: the time limit says why
                merged["exit_status"], output = None, _stopped(timeout, timeout_option)
                break
    return merged, output


def _other_files(paths, file):
    """``paths`` (node ids) but those in test file ``file``."""
    return [node for node in paths if node.partition("::")[0] != file]


def _rest_of_task(manifest, tasks, stopped, merged, test_timeout):
    """The entries of the tests not yet run of the task(s) of the test ``stopped`` after ``test_timeout`` s: "not run"
    (the task has failed already; they are no failure of the student's code), with a message that says why."""
    hung, others = [], []   # the specs of the task(s) of ``stopped``, and of the other tasks
    for task in tasks:
        specs = [_node_ids(manifest, spec) for spec in task.tests]
        (hung if any(_matches(stopped, prefix) for prefix in specs) else others).extend(specs)
    why = (f"not run: {stopped.split('::')[-1]} of the same task ran longer than {test_timeout:g} s "
           f"(--test-timeout), so the task has failed already")
    return {node: {"outcome": NOT_RUN, "message": why} for node in merged["collected"]   # (a test another task
            if node not in merged["tests"] and any(_matches(node, prefix) for prefix in hung)   # shares still runs)
            and not any(_matches(node, prefix) for prefix in others)}


def _stopped(timeout, option):
    return f"grading stopped after {timeout:g} s ({option})"


def _pytest(root, paths, env, results, deadline, test_timeout, log=None):
    """One pytest run of ``paths`` (node ids): (what the recorder wrote, with "exit_status": pytest's, None when
    it ran past ``deadline``, TOO_SLOW when one test ran ``test_timeout`` seconds; pytest's output). A test file
    whose import ran that long has a collection error: its tests were never collected (``_not_loaded``)."""
    command = [sys.executable, "-c", _BOOT, str(RECORDER), str(results), "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", "--continue-on-collection-errors", "--rootdir", str(root), *paths]
    results.unlink(missing_ok=True)
    stack = Path(f"{results}.stack")   # the recorder writes the stack there when stopped with SIGTERM
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out, sigterm_as_interrupt():
        process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out,   # (a breakpoint()
                                   stderr=subprocess.STDOUT)   # waited for a keyboard, then read as an endless loop)
        try:
            status = _watch(process, results, deadline, test_timeout, log)
            if status == TOO_SLOW:   # SIGTERM first: the recorder writes where the code was stopped
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        finally:   # Ctrl-C or SIGTERM: the student's code must not run on
            process.kill()
            process.wait()
        out.seek(0)
        output = out.read()
    recorded = json.loads(results.read_text()) if results.is_file() else {}
    if status == TOO_SLOW and (file := recorded.get("collecting")):   # its tests were never collected
        recorded["unloaded"] = file
        recorded["collection_errors"][file] = _not_loaded(root, file, stack.read_text(errors="replace"), test_timeout)
    return {**recorded, "exit_status": status}, output


def _not_loaded(root, file, stack, test_timeout):
    """Why the tests of ``file`` did not run: collecting it (importing the graded code) ran ``test_timeout`` s; the
    innermost frame in the graded minidl/ of ``stack`` (the recorder's, innermost call first) says where it was."""
    where = next((f"{Path(path).relative_to(root).as_posix()}, line {line}"
                  for path, line in re.findall(r'File "(.+)", line (\d+)', stack)
                  if Path(path).is_relative_to(root / "minidl")), None)
    return (f"collecting {Path(file).name} took longer than {test_timeout:g} s (--test-timeout) and was stopped"
            f"{f' in {where}' if where else ''}: a module that never finishes loading, or code far too slow")


def _watch(process, results, deadline, test_timeout, log=None):
    """Wait for pytest to exit (its exit status), for ``deadline`` (None), or for one test, or the import of one
    test file, to run ``test_timeout`` seconds (TOO_SLOW), reading which runs from the recorder's file; ``log`` hears
    once of each that runs STILL_RUNNING seconds."""
    running, since, told = None, time.monotonic(), False
    while True:
        try:
            return process.wait(timeout=min(_POLL, max(deadline - time.monotonic(), 0)))
        except subprocess.TimeoutExpired:
            now = time.monotonic()
        try:
            recorded = json.loads(results.read_text())
            current = recorded.get("running") or recorded.get("collecting")   # a test, or a test file's import
        except (OSError, ValueError):   # not written yet
            current = None
        if current != running:
            running, since, told = current, now, False
        if log is not None and running is not None and not told and now - since >= STILL_RUNNING:
            limit, by = min((test_timeout, "--test-timeout"), (deadline - since, "the time limit"))   # the first
            log(f"still running {running} ({STILL_RUNNING:g} s; stopped at {round(limit, 1):g} s, {by})")
            told = True
        if now >= deadline:
            return None
        if running is not None and now - since >= test_timeout:
            return TOO_SLOW


def score(manifest, tasks, recorded, output):
    """One TaskResult per task: its tests' outcomes in manifest order, and its points if all passed."""
    last = (output.strip().splitlines() or ["pytest gave no output"])[-1]
    running = recorded.get("running")
    if recorded.get("finished"):
        why_not_run = ""
    elif running and recorded.get("exit_status") is None:
        why_not_run = f"the tests did not finish: {last}, while {running} ran: an endless loop, or code far too slow"
    elif running:
        why_not_run = (f"the tests stopped: the grading process ended (exit status {recorded['exit_status']}) while "
                       f"{running} ran: os._exit, a crash or a signal")
    else:
        why_not_run = f"the tests did not run: {last}"
    folder = f"{manifest.root}{os.sep}"   # resolved (load_manifest)
    results = []
    for task in tasks:
        found = [check for spec in task.tests for check in _spec_checks(manifest, spec, recorded, why_not_run)]
        rules = [CheckResult(f"{target} (source rules)", "failed", message)   # one per rule its targets break
                 for target, message in task_findings(manifest.root, task)]
        found = rules + [_classified(t, folder) for t in found]
        ok = all(t.outcome == "passed" for t in found)
        results.append(TaskResult(task.number, task.title, task.points, task.points if ok else 0, found))
    return results


def _spec_checks(manifest, spec, recorded, why_not_run):
    """The CheckResults of one test spec of the manifest: the tests that ran, and one "not run" for each
    collected test that did not (a time limit stopped it: those were simply missing, and a task whose later
    test hung kept the points of its earlier ones), or for the spec when nothing of it ran."""
    tests, errors = recorded.get("tests", {}), recorded.get("collection_errors", {})
    prefix = _node_ids(manifest, spec)
    ran = [CheckResult(nodeid, **entry) for nodeid, entry in tests.items() if _matches(nodeid, prefix)]
    ran += [CheckResult(nodeid, NOT_RUN, why_not_run or "it did not run")
            for nodeid in recorded.get("collected", []) if _matches(nodeid, prefix) and nodeid not in tests]
    if ran:
        return ran
    file = prefix.partition("::")[0]
    message = (errors.get(file) or (f"{file} is missing: restore it (minidl assignment make writes it)"
                                    if not (manifest.root / file).is_file() else None)
               or why_not_run or "no test matched this name in the grading file")
    return [CheckResult(prefix, NOT_RUN, f"could not run {file}: {message}" if file in errors else message)]


def _classified(check, folder):
    """A failure that only lacked the reference values gets the outcome "no reference"; the graded folder
    (``folder``: its path, with a slash) leaves its messages: they name "minidl/nn/gru.py" as in the student's
    copy, not the temporary folder an instructor's grade runs in (gone when the report is read)."""
    message = check.message.replace(folder, "")
    if check.outcome in ("failed", "error") and plain(message).startswith("ReferenceMissing: "):
        return CheckResult(check.id, NO_REFERENCE, message, check.seconds)
    return replace(check, message=message)


def plain(message, limit=400, lines=3):
    """A failure message as a student should read it: without 'AssertionError: ', module paths, pytest's
    echo of the assert statement, or anything said before a stub's 'implement this'; at most ``lines``
    lines and ``limit`` characters (None: all of it). A breakpoint() left in the code is named."""
    text = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", message.strip())   # minidl.autograd.function.ShapeError -> ShapeError
    text = text.removeprefix("AssertionError: ")
    if "implement this (" in text:
        stub = text[text.index("implement this ("):]
        text = "NotImplementedError: " + re.sub(r" \(input shapes: [^\n]*\)$", "", stub)
    if re.search(r"\bBdbQuit\b", text):   # pdb, at the end of its input (the tests read none)
        text = "a breakpoint() (or pdb.set_trace()) is left in the code: remove it\n" + text
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("assert ")
            and not re.match(r"\s*\+\s+(where|and)\b", line)]   # pytest's explanation of the assert's parts
    if len(kept) < len(text.splitlines()) and all(line.startswith("  ") for line in kept[1:]):
        kept = kept[:1] + [line[2:] for line in kept[1:]]  # pytest indents the lines of an assert's message
    text = "\n".join(kept[:lines])
    return text if limit is None or len(text) <= limit else text[:limit - 3] + "..."


def _failure_lines(r):
    """What the report says under a failed task: its first failure, or that it lacked the reference."""
    failure = r.first_failure()
    failing = sum(t.outcome != "passed" for t in r.tests)
    if failure.outcome == NO_REFERENCE:
        return [f"      {r.lacking_reference} of {len(r.tests)} checks compare with the reference values, which this "
                f"grading did not have; the other {len(r.tests) - failing} passed"]
    not_run = sum(t.outcome == NOT_RUN for t in r.tests)
    lines = [f"      {failing - not_run} of {len(r.tests)} checks failed" + (f", {not_run} not run" if not_run else "")
             + f"; the first{' not run' if failure.outcome == NOT_RUN else ''}, {failure.id.split('::')[-1]}:"]
    return lines + [f"        {line}" for line in plain(failure.message).splitlines()]


def _reference_line(reference, results):
    if reference is not None:
        return f"reference values: {reference}"
    lacking = [str(r.number) for r in results if r.lacking_reference]
    one = len(lacking) == 1   # "tasks 3 compare with them" was said of one task
    task, compare, score, are = ("task", "compares", "scores", "is") if one else ("tasks", "compare", "score", "are")
    return ("reference values: none found (a copy made by minidl assignment make holds none)"
            + (f"; {task} {', '.join(lacking)} {compare} with them and {score} 0 here, and {are} graded with them by "
               f"your instructor (instructors: minidl grade COPY --reference REPOSITORY)" if lacking else ""))


def format_report(manifest, results, seconds, reference=None, how=""):
    """The report on the screen; ``how`` follows the graded folder (what it was graded with)."""
    width = max(len(f"{r.score}/{r.points}") for r in results)
    lines = [f"{manifest.name}: {manifest.title}", f"graded: {manifest.root}{how}", _reference_line(reference, results)]
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        lines.append(f"  task {r.number}  {f'{r.score}/{r.points}':>{width}}  {mark}  {r.title}")
        if r.first_failure() is not None:
            lines += _failure_lines(r)
    total, points = sum(r.score for r in results), sum(r.points for r in results)
    lines.append(f"total {total}/{points} ({len([r for r in results if r.passed])} of {len(results)} tasks "
                 f"passed, {seconds:.0f} s; a task earns its points only when all its checks pass)")
    return "\n".join(lines)


def report_json(manifest, results, seconds, reference=None):
    """The report as JSON; ``first_failure`` is the whole message of the task's first failing check."""
    return {"assignment": manifest.name, "title": manifest.title, "graded": str(manifest.root),
            "reference": None if reference is None else str(reference),
            "score": sum(r.score for r in results), "max_score": sum(r.points for r in results),
            "scoring": "all or nothing per task: a task earns its points only when all its tests pass",
            "seconds": round(seconds, 1),
            "tasks": [{**{k: v for k, v in asdict(r).items() if k != "tests"}, "passed": r.passed,
                       "first_failure": (plain(r.first_failure().message, limit=None, lines=None)
                                         if r.first_failure() else None),
                       "lacking_reference": r.lacking_reference,
                       "tests": [{**asdict(t), "message": plain(t.message, limit=None, lines=None)} for t in r.tests]}
                      for r in results]}   # (pytest's explanation of an assert, "assert 3 == 4", names the answer)


def check_seconds(value, option):
    """``value`` if it is a time limit grading can keep: a number of seconds in (0, a day]."""
    if not (isinstance(value, (int, float)) and 0 < value <= MAX_SECONDS):
        raise AssignmentError(f"{option} must be a positive number of seconds, at most {MAX_SECONDS:,} (a day), got "
                              f"{value!r}")
    return value


def check_once(tasks):
    """Refuse a task number given twice (its points were counted twice)."""
    if tasks and (twice := sorted({n for n in tasks if list(tasks).count(n) > 1})):
        raise AssignmentError(f"--task {twice[0]} is given more than once; give each task once")


def selected_tasks(manifest, tasks):
    """The tasks of ``manifest`` that ``tasks`` (numbers; None: all) names, each once."""
    check_once(tasks)
    return [manifest.task(n) for n in tasks] if tasks else list(manifest.tasks)


def grade(directory=".", assignment=None, tasks=None, timeout=600, reference=None, test_timeout=TEST_SECONDS,
          timeout_option="--timeout"):
    """Grade ``directory``; returns (manifest, [TaskResult], seconds). ``reference``: see ``find_reference``;
    ``timeout_option``: the option of the command that set ``timeout`` (--time-limit for a class or Gradescope)."""
    manifest, _, results, seconds = grade_with_reference(directory, assignment, tasks, timeout, reference, test_timeout,
                                                         timeout_option=timeout_option)
    return manifest, results, seconds


def grade_with_reference(directory, assignment, tasks, timeout, reference, test_timeout, log=None,
                         timeout_option="--timeout"):
    """``grade``, also returning the reference file it used (None: none found):
    (manifest, reference, [TaskResult], seconds). ``log(message)`` hears when the tests start, and of a test that
    runs long (``run_tests``)."""
    check_seconds(timeout, timeout_option)
    check_seconds(test_timeout, "--test-timeout")
    manifest = locate(directory, assignment)
    selected = selected_tasks(manifest, tasks)
    found = find_reference(manifest, reference)
    start = time.perf_counter()
    if log is not None:
        log(f"running the grading tests of {manifest.name} on {manifest.root} ({len(selected)} of "
            f"{len(manifest.tasks)} tasks; at most {timeout:g} s, {test_timeout:g} s a test) ...")
    recorded, output = run_tests(manifest, selected, timeout, found, test_timeout, timeout_option, log)
    return manifest, found, score(manifest, selected, recorded, output), time.perf_counter() - start


TRUSTED = " (its minidl/ in the instructor's copy of the assignment: its own tests, manifest and conftest.py unused)"
SELF_CHECK = (" (with its own grading tests: a self-check, not the instructor's grade, which is: minidl grade COPY "
              "--reference REPOSITORY)")


def _trusted_tree(args, tmp):
    """(the assignment, the folder to grade): the instructor's copy of the assignment with the minidl/ of the copy
    ``args.directory`` in it, in ``tmp``, as ``--submissions`` grades each student (``batch.trusted_tree``): graded
    in place, with its own tests, manifest and conftest.py, a stubbed copy scored what the copy said, 100/100."""
    from .batch import TrustedCopies, trusted_tree   # here: batch imports this module

    try:
        return trusted_tree(Path(args.directory), TrustedCopies(tmp / "copies"), args.assignment,
                            tmp / "work" / Path(args.directory).resolve().name)
    except AssignmentError as e:
        raise AssignmentError(f"{args.directory}: {e}") from None


def main(args):
    if batch_only := [flag for flag in ("csv", "workers") if getattr(args, flag, None) is not None]:   # ignored
        raise AssignmentError(f"--{batch_only[0]} goes with --submissions DIR (a class at once); one copy's report "
                              f"goes to the screen, and to --json FILE")
    if args.json:   # before the tests run, not after
        check_writable(args.json, "--json")
        check_replaceable(args.json, lambda path: {"assignment", "score", "tasks"} <= json_keys(path), "minidl grade",
                          "--json")
    trusted = getattr(args, "reference", None) is not None
    with tempfile.TemporaryDirectory(prefix="minidl-trusted-") as tmp:
        assignment, directory = _trusted_tree(args, Path(tmp)) if trusted else (args.assignment, args.directory)
        manifest, reference, results, seconds = grade_with_reference(
            directory, assignment, args.task, args.timeout, getattr(args, "reference", None), args.test_timeout,
            log=lambda message: print(message.replace(str(directory), str(args.directory)), file=sys.stderr,
                                      flush=True))   # (not the temporary folder it grades in)
    if trusted:
        manifest = replace(manifest, root=Path(args.directory).resolve())
    how = (TRUSTED if trusted else SELF_CHECK if (manifest.root / MARKER).is_file() else "")
    print(format_report(manifest, results, seconds, reference, how))
    if args.json:
        write_text(args.json, json.dumps(report_json(manifest, results, seconds, reference), indent=1))
    return 0

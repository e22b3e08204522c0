"""``minidl grade --submissions DIR --csv grades.csv``: grade a whole class, one student copy per subfolder.

    minidl grade --submissions submissions/ --csv grades.csv --workers 4 --time-limit 300

Each immediate subfolder of DIR is one student's copy (hidden folders are skipped), and so is each
``NAME.zip`` there (a learning platform's download), unpacked for grading as Gradescope does. As on the
Gradescope autograder, it is graded in the instructor's copy of its assignment (``minidl
assignment make`` from the repository this minidl runs from) with the student's ``minidl/`` put
in (``gradescope.assemble``; the grading machinery stays the instructor's): the copy's own
manifest, grading tests and conftest.py are never read, so edited tests or points change
nothing. Give ``--assignment`` so that a copy's ``assignment.toml`` cannot choose what it is
graded as. Each is graded by a process of its own that calls ``grade.grade``, the function
behind ``minidl grade``, and writes its JSON report (``grade.report_json``), reference values
included (``reference``: as ``minidl grade --reference`` takes them; default: the instructor's
repository this minidl runs from). That process runs
pytest in a further subprocess, and the student's code runs there: an endless loop, a crash or
a ``sys.exit`` ends or stalls only that student's grading. The tests stop after ``time_limit``
seconds and the tasks that finished keep their points (the report names the test that was
running). Each grading process starts a process group of its own; when it runs past
``time_limit`` and a minute more the whole group is killed (the grader, its
pytest, and whatever the student's code started), and what is left of the group is killed when
it ends in time too, so nothing of one student outlives its turn. Several students are graded at
once (default: one per CPU), each with one BLAS/OpenMP thread, so they do not fight over the cores.

Every subfolder and zip gets one row (a zip's under its name without ``.zip``): its total, its
points per task, the whole message of its first failing check, and a status: ``graded``, ``timed
out``, ``not a submission: <why>`` (``grade`` refused the folder: no ``assignment.toml``, no
``minidl/``...) or ``error: <why>``. A row that is
not ``graded`` scores 0, so the CSV can go to a gradebook as it is; its status says why.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..bench.threads import usable_cpus
from ..io import atomic_path, check_replaceable, check_writable
from .grade import (TEST_SECONDS, check_once, check_seconds, find_reference, grade, report_json, selected_tasks,
                    sigterm_as_interrupt)
from .make import make
from .manifest import MARKER, MINIDL_ROOT, AssignmentError, find_assignment, known_assignments, read_toml

GRADED, TIMED_OUT, NOT_A_SUBMISSION = "graded", "timed out", "not a submission: "
_REFUSED = 3                  # the exit status of a grading process whose folder ``grade`` refused
# the grading process: without the working folder on sys.path (as the `minidl` command runs), so a minidl/ there,
# a student's, cannot stand in for the grader; the working folder itself stays the caller's, as for `minidl grade`
_WORKER = ("import sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
           "from minidl.assignment.batch import grade_one; sys.exit(grade_one(sys.argv[1:]))")
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_GRACE = 60   # the batch kills a grading this much after the time limit, where grade's own pytest timeout stops
#               the tests and scores what finished (the tasks done keep their points; the report names the test
#               that was running)


@dataclass
class Row:
    """One student's result. ``tasks``: {task number: points earned}, ``failures``: {task number: the whole
    message of its first failing check} for the tasks that did not earn their points; both empty unless graded."""

    student: str
    total: int = 0
    tasks: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    status: str = GRADED
    first_failure: str = ""    # "task N: <the whole message of its first failing check>"
    max_total: int = 0
    assignment: str = ""
    seconds: float = 0.0
    report: dict = None        # the JSON report of ``minidl grade --json`` (None unless graded)


def submission_folders(submissions_dir):
    """The immediate, non-hidden subfolders and ``.zip`` files of ``submissions_dir``, sorted by name; a zip
    beside a folder of the same student is refused (which one is theirs?)."""
    folder = Path(submissions_dir)
    if not folder.is_dir():
        raise AssignmentError(f"{folder} is not a folder: give the folder that holds one student copy per subfolder")
    if (folder / MARKER).is_file():
        raise AssignmentError(f"{folder} is one student copy, not a folder of copies; grade it with: "
                              f"minidl grade {folder}")
    found = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_dir() or _is_zip(p)))
    if not found:
        raise AssignmentError(f"{folder} has no subfolders: put each student's copy in a folder of its own there")
    if twice := sorted({p.name for p in found if p.is_dir()} & {p.name[:-4] for p in found if _is_zip(p)}):
        raise AssignmentError(f"{folder} holds both {twice[0]}/ and {twice[0]}.zip; keep one submission per student")
    return found


def _is_zip(path):
    return path.name.lower().endswith(".zip") and path.is_file()


def _unzipped(path, folder):
    """The submission ``path`` (a .zip) unpacked into ``folder`` (zipfile drops ".." and absolute names)."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise AssignmentError(f"{path.name} cannot be unpacked ({e}); submit a zip of the copy's top folder") from None
    return folder


class _Groups:
    """The process groups of the gradings under way, so that an interrupted batch (Ctrl-C) kills them all
    instead of leaving students' code running; the lock makes sure a group is never killed after its
    leader was reaped (its id could then belong to another process)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = set()
        self.stopped = False

    def start(self, command, **options):
        with self.lock:
            if self.stopped:
                raise AssignmentError("grading was interrupted")
            process = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL, **options)
            self.live.add(process)
            return process

    def finish(self, process):
        """Kill what is left of ``process``'s group, reap ``process``, and wait (a few seconds at most) for the
        rest of the group to die: SIGKILL is asynchronous, and a busy student's loop dies when next scheduled."""
        with self.lock:
            _kill_group(process)
            process.wait()
            self.live.discard(process)
        _wait_group_gone(process.pid)

    def stop_all(self):
        with self.lock:
            self.stopped = True
            for process in self.live:
                _kill_group(process)


def _kill_group(process):
    killpg = getattr(os, "killpg", None)
    with contextlib.suppress(ProcessLookupError, PermissionError):   # the whole group has already exited
        if killpg is not None:
            killpg(process.pid, signal.SIGKILL)  # the leader is not reaped yet, so the group id is still its own
        else:  # pragma: no cover - Windows: no process groups to kill
            process.kill()


def _wait_group_gone(group, seconds=5.0):
    """Wait until no process of ``group`` is left. Bounded: dead ones that nobody reaps still count, and once the
    leader is reaped its id may start a new grading's group (then this only waits, it sends no signal)."""
    killpg = getattr(os, "killpg", None)
    deadline = time.monotonic() + seconds
    while killpg is not None and time.monotonic() < deadline:
        try:
            killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def _exited(process):
    """Whether ``process`` has exited, without reaping it (so its process group id stays reserved)."""
    if not hasattr(os, "waitid"):  # pragma: no cover - not POSIX
        return process.poll() is not None
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait(process, time_limit):
    """Wait up to ``time_limit`` seconds for ``process`` to exit; whether it did."""
    deadline = time.monotonic() + time_limit
    while not _exited(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _command(directory, files, reference, assignment, time_limit, tasks, test_timeout):
    options = {"assignment": assignment, "tasks": list(tasks) if tasks else None, "timeout": time_limit,
               "test_timeout": test_timeout, "timeout_option": "--time-limit"}
    if reference is not None:  # only when given: grade finds the instructor's own otherwise
        options["reference"] = str(Path(reference).resolve())
    return [sys.executable, "-c", _WORKER, str(Path(directory).resolve()), str(files / "report.json"),
            str(files / "refused.txt"), json.dumps(options)]


def grade_one(argv):
    """The grading process of one copy (``python -c`` runs it): argv = [copy, report.json, refused.txt, options
    as JSON]. Writes the JSON report and returns 0, or writes why ``grade`` refused the folder and returns 3."""
    directory, report, refused, options = argv[0], Path(argv[1]), Path(argv[2]), json.loads(argv[3])
    try:
        manifest, results, seconds = grade(directory, **options)
    except AssignmentError as e:
        refused.write_text(str(e), encoding="utf-8")
        return _REFUSED
    report.write_text(json.dumps(report_json(manifest, results, seconds)), encoding="utf-8")
    return 0


def _environment():
    """This minidl first on the path (the grader is the instructor's, whatever the working folder), and one
    thread per numerical library (where the caller's environment sets no number)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    return {**dict.fromkeys(_ONE_THREAD, "1"), **env, "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join([str(MINIDL_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _whole_failure(task):
    """The message of the first failing check of a task of the JSON report, as the report gives it (whole),
    else that of its first test that did not pass."""
    test = next((t for t in task.get("tests", []) if t.get("outcome") != "passed"), None)
    return task.get("first_failure") or (test or {}).get("message") or "failed"


def _graded_row(student, report, seconds):
    failures = {t["number"]: _whole_failure(t) for t in report["tasks"] if not t["passed"]}
    first = next(iter(failures.items()), None)
    return Row(student, report["score"], {t["number"]: t["score"] for t in report["tasks"]}, failures, GRADED,
               f"task {first[0]}: {first[1]}" if first else "", report["max_score"], report.get("assignment", ""),
               seconds, report)


def _failed_row(student, returncode, files, seconds):
    """The row of a grading that ended without a report: ``grade`` refused the folder, or broke."""
    if returncode == _REFUSED and (files / "refused.txt").is_file():
        return Row(student, status=NOT_A_SUBMISSION + (files / "refused.txt").read_text(encoding="utf-8"),
                   seconds=seconds)
    lines = [line for line in (files / "output.txt").read_text(errors="replace").splitlines() if line.strip()]
    why = lines[-1] if lines else f"the grading process exited with status {returncode} and wrote no report"
    return Row(student, status=f"error: {why}", seconds=seconds)


def grade_folder(directory, reference=None, assignment=None, time_limit=600, tasks=None, groups=None,
                 test_timeout=TEST_SECONDS):
    """Grade one student's copy in a process group of its own, killed after ``time_limit`` seconds; its Row."""
    directory, groups = Path(directory), groups or _Groups()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minidl-batch-") as tmp:
        files = Path(tmp)
        with open(files / "output.txt", "wb") as out:  # a file, not a pipe: a leftover child cannot block us
            process = groups.start(_command(directory, files, reference, assignment, time_limit, tasks, test_timeout),
                                   env=_environment(), stdout=out, stderr=subprocess.STDOUT)
            try:
                finished = _wait(process, time_limit + _GRACE)
            finally:
                groups.finish(process)
        seconds = time.perf_counter() - start
        if not finished:
            return Row(directory.name, status=TIMED_OUT, seconds=seconds,
                       first_failure=f"grading did not finish within {time_limit:g} s (--time-limit): an endless "
                                     f"loop, or code far too slow; it was stopped")
        if process.returncode == 0 and (files / "report.json").is_file():
            report = json.loads((files / "report.json").read_text(encoding="utf-8"))
            return _graded_row(directory.name, report, seconds)
        return _failed_row(directory.name, process.returncode, files, seconds)


def grade_submissions(submissions_dir, reference=None, workers=None, time_limit=600, assignment=None, tasks=None,
                      progress=None, test_timeout=TEST_SECONDS):
    """Grade every subfolder and zip of ``submissions_dir`` (one student each), ``workers`` at a time (default: one per
    CPU), each in its own process group killed after ``time_limit`` seconds; one Row per folder, by name.

    ``reference``, ``assignment``, ``tasks`` and ``test_timeout`` are passed on to ``grade`` (``minidl grade``'s
    ``--reference``, ``--assignment``, ``--task``, ``--test-timeout``); ``progress(row, done, count)`` is called
    as each student finishes."""
    workers = usable_cpus() if workers is None else workers  # one grading at a time per CPU
    if not isinstance(workers, int) or workers < 1:
        raise AssignmentError(f"--workers must be a whole number >= 1, got {workers!r}")
    check_seconds(time_limit, "--time-limit")
    check_seconds(test_timeout, "--test-timeout")
    if reference is not None and not Path(reference).exists():
        raise AssignmentError(f"--reference {reference} does not exist")
    folders = submission_folders(submissions_dir)
    groups, rows = _Groups(), {}
    pool = ThreadPoolExecutor(max_workers=min(workers, len(folders)), thread_name_prefix="minidl-grade")
    trusted = tempfile.TemporaryDirectory(prefix="minidl-trusted-")
    try:
        with sigterm_as_interrupt():
            copies = TrustedCopies(Path(trusted.name))
            pending = {pool.submit(grade_trusted, folder, copies, reference, assignment, time_limit, tasks, groups,
                                   test_timeout):
                       folder for folder in folders}
            for done in as_completed(pending):
                row = done.result()
                rows[pending[done]] = row
                if progress is not None:
                    progress(row, len(rows), len(folders))
    except BaseException:
        groups.stop_all()  # Ctrl-C, SIGTERM or a failure: no student's code keeps running
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        trusted.cleanup()
    return [rows[folder] for folder in folders]


class TrustedCopies:
    """The instructor's copy of each assignment (``minidl assignment make``, from the repository this
    minidl runs from), made once per batch: its manifest, grading tests and checks are the ones a
    submission is graded with."""

    def __init__(self, folder):
        self.folder, self.made, self.lock = folder, {}, threading.Lock()

    def source(self, name):
        """A folder holding ``grader/``, the trusted copy of ``name`` (as Gradescope's source/ does)."""
        with self.lock:
            if name not in self.made:
                make(name, self.folder / name / "grader")
                self.made[name] = self.folder / name
            return self.made[name]


def grade_trusted(folder, copies, reference, assignment, time_limit, tasks, groups, test_timeout):
    """Grade one submission as the Gradescope autograder does: the instructor's copy of its assignment with
    the student's ``minidl/`` in it (the grading machinery excepted). A copy's own manifest, grading tests
    and conftest.py are never read: with them, a copy whose tests or points were edited scored 100/100
    stubbed (or 1000). Its Row, under the folder's name."""
    folder = Path(folder)
    student = folder.name[:-4] if _is_zip(folder) else folder.name
    with tempfile.TemporaryDirectory(prefix="minidl-work-") as tmp:
        try:
            name, work = trusted_tree(folder, copies, assignment, Path(tmp) / student)
        except AssignmentError as e:
            return Row(student, status=NOT_A_SUBMISSION + str(e))
        return grade_folder(work, reference, name, time_limit, tasks, groups, test_timeout)


def trusted_tree(folder, copies, assignment, work):
    """(the assignment's name, ``work``): the instructor's copy of the assignment of the submission ``folder`` (a
    copy or its zip; ``assignment``: None, as its ``assignment.toml`` says) with the student's ``minidl/`` put in,
    written to ``work`` (a zip is unpacked beside it); an AssignmentError says why a folder is not a submission."""
    from .gradescope import assemble, find_submitted_copy  # here: gradescope imports this module

    copy = find_submitted_copy(_unzipped(folder, work.with_name("zip")) if _is_zip(folder) else folder)
    name = assignment or (read_toml(copy / MARKER).get("assignment") if (copy / MARKER).is_file() else None)
    if not isinstance(name, str):
        raise AssignmentError(f"{folder} is not a student copy (its {MARKER} names no assignment)")
    return name, assemble(copies.source(name), copy, work)


def write_grades_csv(rows, path):
    """Write the rows as CSV (student, total, one column per task, status, first_failure), atomically: a
    gradebook import never reads half a file. A row that is not graded has 0 in every task column."""
    numbers = sorted({number for row in rows for number in row.tasks})
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "total", *(f"task {n}" for n in numbers), "status", "first_failure"])
        for row in rows:
            writer.writerow([row.student, row.total, *(row.tasks.get(n, 0) for n in numbers), row.status,
                             row.first_failure])
    return Path(path)


def _check_arguments(args):
    """Refuse what the batch cannot do before any grading, not after the last student."""
    if not args.csv:
        raise AssignmentError("--submissions needs --csv FILE: where to write the grades")
    if args.directory != ".":
        raise AssignmentError(f"give either a copy to grade ({args.directory}) or --submissions, not both")
    if args.json:
        raise AssignmentError("--json writes the report of one copy; with --submissions the grades go to --csv")
    if args.timeout != 600:   # it was ignored: each student's limit is --time-limit
        raise AssignmentError("--timeout is the limit of one copy's grading; with --submissions give --time-limit")
    target = Path(args.csv).resolve()
    if target.is_dir():
        raise AssignmentError(f"--csv {args.csv} is a folder; give the path of a file, e.g. {target / 'grades.csv'}")
    check_writable(args.csv, "--csv")   # below a file too: os.access on the nearest parent let it grade the class
    check_replaceable(args.csv, _is_grades_csv, "minidl grade --submissions", "--csv")
    check_once(args.task)
    # a typo here graded every student 0 and replaced the last grades (without --assignment: of those the copies are)
    names = [args.assignment] if args.assignment else _named_assignments(args.submissions)
    if len(names) > 1 and (args.task or getattr(args, "reference", None)):   # one stray copy refused the class
        raise AssignmentError(f"the copies are of several assignments ({', '.join(names)}): --task and --reference "
                              f"are one assignment's; give it with --assignment NAME, or leave them out")
    for name in names:
        manifest = find_assignment(name)
        selected_tasks(manifest, args.task)
        find_reference(manifest, getattr(args, "reference", None))


def _named_assignments(submissions):
    """The assignments of this minidl that the copies (zips aside) in ``submissions`` say they are, each once."""
    from .gradescope import find_submitted_copy  # here: gradescope imports this module

    names = set()
    for folder in submission_folders(submissions):
        with contextlib.suppress(AssignmentError):   # not a copy, or a zip: its own row says so
            marker = find_submitted_copy(folder) / MARKER
            names.add(str(read_toml(marker).get("assignment")) if marker.is_file() else "")
    return sorted(names & set(known_assignments(MINIDL_ROOT)))


def _is_grades_csv(path):
    """Does ``path`` begin as ``write_grades_csv`` writes (what --csv may replace)?"""
    with open(path, encoding="utf-8") as f:
        return f.readline().startswith("student,total,")


def _print_progress(row, done, count):
    score = f"{row.total}/{row.max_total}" if row.status == GRADED else row.status
    print(f"[{done}/{count}] {row.student}: {score} ({row.seconds:.0f} s)", flush=True)


def main(args):
    """``minidl grade --submissions DIR --csv FILE``: grade the class, write the CSV, print a summary."""
    _check_arguments(args)
    rows = grade_submissions(args.submissions, getattr(args, "reference", None), args.workers, args.time_limit,
                             args.assignment, args.task, progress=_print_progress, test_timeout=args.test_timeout)
    path = write_grades_csv(rows, args.csv)
    graded = [row for row in rows if row.status == GRADED]
    counts = Counter(row.status.split(":")[0] for row in rows if row.status != GRADED)
    others = "".join(f", {n} {kind}" for kind, n in sorted(counts.items()))
    mean = (f"; mean {sum(r.total for r in graded) / len(graded):.1f}/{graded[0].max_total}" if graded else "")
    print(f"graded {len(graded)} of {len(rows)} folders{others}{mean}; wrote {path}")
    assignments = sorted({row.assignment for row in graded})
    if len(assignments) > 1:
        print(f"warning: the copies are of different assignments ({', '.join(assignments)}); "
              f"check the task columns", file=sys.stderr)
    return 0

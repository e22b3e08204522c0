"""Grading on the course platforms: a Gradescope autograder, and a GitHub Classroom workflow.

    minidl assignment gradescope ex2_sentiment --out autograder.zip

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/) unpacks the zip to
``/autograder/source`` and runs its ``setup.sh`` once, to build the image; then, for each
submission, it puts the student's files in ``/autograder/submission``, runs ``run_autograder``
(in ``/autograder``) and shows ``/autograder/results/results.json``: here one test per task,
with its points and, when it failed, the whole message of its first failing check. The zip holds

    setup.sh                 a virtual environment /autograder/venv: torch (CPU, pinned), minidl's dependencies,
                             pytest
    run_autograder           grading with the zip's own minidl: ``autograde`` below
    grader/                  a student copy (``minidl assignment make NAME``): the manifest, grading tests and
                             checks that grading trusts
    reference/expected.json  the reference values (the instructor's ``grading/expected.json``, or the file that
                             ``--reference`` names, as ``minidl grade --reference`` finds it)

It holds a student copy and only the reference values' file, not the repository, because the
student's code runs in the same container: a submission could read whatever the zip holds and
print it in a failure message, and a student copy holds no solution. ``autograde`` grades a tree
built from ``grader/`` with the submission's ``minidl/`` package in place of the stubbed one,
except the grading machinery (``minidl/assignment/``, ``minidl/gradcheck.py``), which stays the
instructor's: a submission that edits its checks or its tests changes nothing. The grading
itself is ``batch.grade_folder``: ``grade`` in a process group killed after the time limit.

``classroom_workflow(NAME)`` is the same grading for GitHub Classroom: the text of
``.github/workflows/classroom.yml`` (``write_classroom_workflow`` puts it in a copy being made),
which grades the copy on every push and reports each task as one autograding test worth its points.

``AUTOGRADER_ROOT`` (instead of ``/autograder``) and ``MINIDL_AUTOGRADER_PYTHON`` (instead of
setup.sh's environment) let ``run_autograder`` run outside Gradescope, as the tests run it.
"""
from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..io import atomic_path, check_replaceable, write_text
from .batch import GRADED, TIMED_OUT, Row, grade_folder
from .grade import check_seconds, find_reference
from .make import make
from .manifest import EXPECTED, MARKER, AssignmentError, find_assignment, read_toml

TORCH = "2.13.0"            # the course's pinned torch (see the Makefile), as the CPU wheel
TIME_LIMIT = 480            # seconds per submission: under Gradescope's default limit of 10 minutes
GRADER, REFERENCE = "grader", "reference"
_TRUSTED = ("minidl/assignment", "minidl/gradcheck.py")   # the grading machinery: never the student's
_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".DS_Store")
_NOT_A_COPY = ("__MACOSX",)

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root on its Ubuntu image, when it builds the autograder: a virtual
# environment with the CPU wheel of torch (pinned: an unpinned torch pulls GBs of CUDA), then
# minidl's own dependencies (from the copy in grader/) and pytest, which grading runs.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
if command -v apt-get >/dev/null; then
    apt-get update && apt-get install -y python3 python3-pip python3-venv
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/pip" install --upgrade pip
"$ROOT/venv/bin/pip" install torch=={TORCH} --index-url https://download.pytorch.org/whl/cpu
"$ROOT/venv/bin/pip" install "$ROOT/source/{GRADER}" "pytest>=7.4" "tomli; python_version < '3.11'"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission, in /autograder: it grades /autograder/submission with the
# tests and reference values in /autograder/source and writes /autograder/results/results.json.
# AUTOGRADER_ROOT and MINIDL_AUTOGRADER_PYTHON replace /autograder and setup.sh's Python outside Gradescope.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{MINIDL_AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
cd "$ROOT"
export PYTHONPATH="$ROOT/source/{grader}${{PYTHONPATH:+:$PYTHONPATH}}"   # the zip's minidl grades
GRADE='import sys; from minidl.assignment.gradescope import autograde; sys.exit(autograde(*sys.argv[1:]))'
exec "$PYTHON" -c "$GRADE" "$ROOT" {name} {time_limit} {reference}
"""


def _add(archive, name, data, mode=0o644):
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = (stat.S_IFREG | mode) << 16   # run_autograder must stay executable
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _is_autograder(path):
    with zipfile.ZipFile(path) as archive:
        return "run_autograder" in archive.namelist()


def build_autograder(name, out, root=None, reference=None, time_limit=TIME_LIMIT):
    """Write Gradescope's ``autograder.zip`` for assignment ``name`` to ``out`` (atomically); returns its Path."""
    manifest = find_assignment(name, root)
    check_seconds(time_limit, "--time-limit")
    out = Path(out)
    if out.suffix != ".zip":
        raise AssignmentError(f"--out {out}: Gradescope takes a .zip file; give a path like autograder.zip")
    check_replaceable(out, _is_autograder, "minidl assignment gradescope")
    values = find_reference(manifest, reference)  # as minidl grade finds it; None if none
    where = f"{REFERENCE}/{EXPECTED}" if values is not None else ""
    run = RUN_AUTOGRADER.format(grader=GRADER, name=manifest.name, time_limit=f"{time_limit:g}",
                                reference=f'"$ROOT/source/{where}"' if where else "")
    with tempfile.TemporaryDirectory(prefix="minidl-gradescope-") as tmp:
        grader = make(manifest.name, Path(tmp) / GRADER, root=manifest.root)
        with atomic_path(out) as path, zipfile.ZipFile(path, "w") as archive:
            _add(archive, "setup.sh", SETUP_SH, 0o755)
            _add(archive, "run_autograder", run, 0o755)
            for file in sorted(grader.rglob("*")):   # the student copy, each file with its mode
                if file.is_file():
                    _add(archive, f"{GRADER}/{file.relative_to(grader).as_posix()}", file.read_bytes(),
                         file.stat().st_mode & 0o777)
            if where:
                _add(archive, where, Path(values).read_bytes())
    return out


def find_submitted_copy(submission):
    """The folder of the submission that holds the student's ``minidl/``: the submission itself, or the one
    folder inside it (a zip of the copy's top folder unpacks to one; not a link: to the instructor's, it was graded)."""
    submission = Path(submission)
    if (submission / "minidl" / "__init__.py").is_file():
        return submission
    inside = [p for p in sorted(submission.iterdir()) if p.is_dir() and not p.is_symlink() and p.name not in _NOT_A_COPY
              and (p / "minidl" / "__init__.py").is_file()] if submission.is_dir() else []
    if len(inside) == 1:
        return inside[0]
    if inside:
        names = ", ".join(p.name for p in inside)
        raise AssignmentError(f"the submission holds {len(inside)} copies of minidl ({names}); submit one")
    raise AssignmentError("the submission has no minidl/ package: submit the top folder of your copy (the one with "
                          "assignment.toml and minidl/), or a zip of it")


def assemble(source, submission, work):
    """``work``: the trusted copy (``source/grader``) with the submission's ``minidl/`` in place of the stubbed
    one, the grading machinery (``_TRUSTED``) excepted. Returns ``work``."""
    student = find_submitted_copy(submission)
    # a link to the instructor's solution was graded as the student's code (links in minidl/ are copied as links)
    for path in itertools.chain([student / "minidl"], (student / "minidl").rglob("*")):   # (not followed)
        if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(Path(submission).resolve()):
            raise AssignmentError(f"{path.relative_to(submission)} is a symbolic link to {os.readlink(path)}, outside "
                                  f"the submission: grading reads only its own files; put the file itself there")
    grader = Path(source) / GRADER
    wanted, given = (read_toml(folder / MARKER).get("assignment") if (folder / MARKER).is_file() else None
                     for folder in (grader, student))
    if given is not None and given != wanted:   # a later exercise's copy holds this one's solutions: it scored 100
        raise AssignmentError(f"the submission is a copy of {given}, not of {wanted}; submit your copy of {wanted}")
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(grader, work, ignore=_IGNORE)
    shutil.rmtree(work / "minidl")
    shutil.copytree(student / "minidl", work / "minidl", ignore=_IGNORE, symlinks=True)
    for path in _TRUSTED:
        target = work / path
        if target.is_dir() and not target.is_symlink():   # (rmtree refuses a link: it stopped a class's grading)
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if (grader / path).is_dir():
            shutil.copytree(grader / path, target, ignore=_IGNORE)
        else:
            shutil.copy2(grader / path, target)
    return work


def _tests(tasks, row):
    """Gradescope's tests: one per task, with the whole message of its first failing check as output."""
    ungraded = row.status + (f": {row.first_failure}" if row.first_failure else "")   # each task's, if not graded
    tests = []
    for task in tasks:
        earned = row.tasks.get(task.number, 0)
        output = row.failures.get(task.number, "passed") if row.status == GRADED else ungraded
        tests.append({"name": f"Task {task.number}: {task.title}", "number": str(task.number), "score": earned,
                      "max_score": task.points, "status": "passed" if earned == task.points else "failed",
                      "output": output, "visibility": "visible"})
    return tests


def results(manifest, row, seconds):
    """The content of Gradescope's results.json for one graded (or ungradable) submission."""
    if row.status == GRADED:
        passed = sum(1 for task in manifest.tasks if row.tasks.get(task.number) == task.points)
        summary = (f"total {row.total}/{manifest.points} ({passed} of {len(manifest.tasks)} tasks passed); a task "
                   f"earns its points only when all its checks pass. Check your work with: minidl grade")
    else:
        summary = f"no points: {row.first_failure if row.status == TIMED_OUT else row.status}"
    return {"score": row.total if row.status == GRADED else 0, "execution_time": round(seconds),
            "output": summary, "visibility": "visible", "tests": _tests(manifest.tasks, row)}


def _write_results(root, content):
    path = Path(root) / "results" / "results.json"
    write_text(path, json.dumps(content, indent=1))
    return path


def autograde(root, name, time_limit=TIME_LIMIT, reference=None):
    """Grade ``root/submission`` with ``root/source`` and write ``root/results/results.json`` (``run_autograder``
    calls this); returns 0. A submission that cannot be graded scores 0 with the reason in results.json; when
    the autograder itself breaks, results.json says so (no points) and the error is raised, for the log."""
    root, start = Path(root), time.perf_counter()
    source = root / "source"
    manifest = find_assignment(name, source / GRADER)
    try:
        work = assemble(source, root / "submission", root / "work")
        row = grade_folder(work, reference=reference or None, time_limit=float(time_limit))
    except AssignmentError as e:
        row = Row("submission", status=f"not a submission: {e}")
    except Exception as e:  # the autograder's own fault: say so rather than leave no results
        _write_results(root, results(manifest, Row("submission", status=f"error: the autograder failed: {e}"),
                                     time.perf_counter() - start))
        raise
    content = results(manifest, row, time.perf_counter() - start)
    path = _write_results(root, content)
    print(content["output"])  # Gradescope shows this (stdout) to instructors only; students see results.json
    for test in content["tests"]:
        print(f"  {test['name']}: {test['score']}/{test['max_score']}")
        if test["status"] != "passed":
            print(f"    {test['output'].splitlines()[0]}")
    print(f"wrote {path}", file=sys.stderr)
    return 0


# the command of the autograding test of task {n}: it passes when the task earned its points in minidl grade's report
_CHECK = ('import json, sys; task = [t for t in json.load(open(".minidl-grade.json"))["tasks"] '
          'if t["number"] == {n}][0]; print(task["first_failure"] or "passed"); '
          'sys.exit(0 if task["passed"] else 1)')


def classroom_workflow(name, root=None):
    """The text of ``.github/workflows/classroom.yml`` for a student copy of assignment ``name``: on every push,
    GitHub Actions grades the copy once with ``minidl grade`` (its report is the log of that step), then each
    task is one GitHub Classroom autograding test worth the task's points, passed when the task earned them.

    A student copy holds no reference values, so the checks that need them fail unless the organisation
    has a secret (``MINIDL_REFERENCE_<NAME>``) holding the assignment's ``grading/expected.json``, which the
    workflow passes to ``minidl grade --reference``. The students own the repository and its workflow:
    this is feedback on every push; the grades of record come from ``minidl grade --submissions``."""
    manifest = find_assignment(name, root)
    secret = "MINIDL_REFERENCE_" + "".join(c if c.isalnum() else "_" for c in manifest.name).upper()
    # json.dumps writes a YAML double-quoted scalar: JSON's string syntax is a subset of it
    lines = [f"# GitHub Classroom autograding of {manifest.name}, written by `minidl assignment make`: on every push",
             "# the copy is graded once by `minidl grade` (the full report is in the log of the step",
             "# \"minidl grade\"), and each task is one autograding test worth its points, passed when all its",
             "# checks pass. The checks that compare with the reference values need them: instructors, put the",
             f"# assignment's grading/expected.json in the organisation secret {secret}.",
             f"name: {json.dumps('Autograding: ' + manifest.name)}",
             '"on": [push, workflow_dispatch, repository_dispatch]',
             "permissions:", "  checks: write", "  actions: read", "  contents: read",
             "jobs:", "  run-autograding-tests:", "    runs-on: ubuntu-latest",
             "    if: github.actor != 'github-classroom[bot]'", "    steps:",
             "      - name: Checkout code", "        uses: actions/checkout@v4",
             "      - name: Set up Python", "        uses: actions/setup-python@v5",
             "        with:", '          python-version: "3.11"',
             "      - name: Install minidl", "        run: |",
             f"          python -m pip install torch=={TORCH} --index-url https://download.pytorch.org/whl/cpu",
             '          python -m pip install -e . "pytest>=7.4"',
             "      - name: minidl grade", "        continue-on-error: true", "        env:",
             f"          MINIDL_REFERENCE: ${{{{ secrets.{secret} }}}}",
             "        run: |",
             '          if [ -n "$MINIDL_REFERENCE" ]; then',
             '            printf "%s" "$MINIDL_REFERENCE" > "$RUNNER_TEMP/expected.json"',
             '            minidl grade --json .minidl-grade.json --reference "$RUNNER_TEMP/expected.json"',
             "          else",
             "            minidl grade --json .minidl-grade.json",
             "          fi"]
    for task in manifest.tasks:
        title = f"Task {task.number}: {task.title}"
        lines += [f"      - name: {json.dumps(title)}", f"        id: task-{task.number}",
                  "        uses: classroom-resources/autograding-command-grader@v1", "        with:",
                  f"          test-name: {json.dumps(title)}",
                  f"          command: {json.dumps('python -c ' + shlex.quote(_CHECK.format(n=task.number)))}",
                  "          timeout: 1", f"          max-score: {task.points}"]
    runners = ",".join(f"task-{task.number}" for task in manifest.tasks)
    lines += ["      - name: Autograding Reporter", "        uses: classroom-resources/autograding-grading-reporter@v1",
              "        env:"]
    lines += [f"          TASK-{task.number}_RESULTS: \"${{{{steps.task-{task.number}.outputs.result}}}}\""
              for task in manifest.tasks]
    lines += ["        with:", f"          runners: {runners}"]
    return "\n".join(lines) + "\n"


def write_classroom_workflow(destination, name, root=None):
    """Write ``classroom_workflow(name, root)`` to ``destination/.github/workflows/classroom.yml`` (a student
    copy being made); returns its Path."""
    path = Path(destination) / ".github" / "workflows" / "classroom.yml"
    write_text(path, classroom_workflow(name, root))   # makes .github/workflows/
    return path


def main(args):
    """``minidl assignment gradescope NAME --out FILE``."""
    out = build_autograder(args.name, args.out, root=args.root, reference=args.reference, time_limit=args.time_limit)
    manifest = find_assignment(args.name, args.root)
    print(f"wrote {out} ({os.path.getsize(out) // 1024} KB): the Gradescope autograder of {manifest.name} "
          f"({len(manifest.tasks)} tasks, {manifest.points} points, {args.time_limit:g} s per submission)\n"
          f"  upload it as the autograder of a programming assignment; students submit the top folder of their copy "
          f"(or a zip of it)")
    return 0

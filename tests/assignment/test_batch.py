"""Grading a whole class: 8 copies of ex2_sentiment with different tasks solved, one of which hangs, graded two
at a time; each student's points, the hung one stopped and reported without stopping the others, and the CSV."""
import argparse
import contextlib
import csv
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from minidl.assignment.batch import GRADED, grade_submissions, main, submission_folders, write_grades_csv
from minidl.assignment.make import make
from minidl.assignment.manifest import AssignmentError
from minidl.io import WriteError

NAME = "ex2_sentiment"
POINTS = {1: 10, 2: 10, 3: 20, 4: 25, 5: 20, 6: 15}
# the tasks each kind of copy leaves as stubs; the others keep the reference code (stubs fail fast: grading is quick)
STUBBED = [(1, 2, 3, 4, 5, 6), (2, 3, 4, 5, 6), (1, 2, 3, 4, 5), (3, 4, 5, 6), (3, 4, 5)]
STUDENTS = 8
HUNG = "student_06"      # a copy of the second kind (task 1 solved), with an endless loop in Sigmoid.backward
# well above one honest copy's grading time (about 12 s with the machine busy; more on CI's two shared cores, where
# 15 s once timed out an honest copy), so only the endless loop reaches it
TIME_LIMIT = 60


def _solved(stubbed):
    return {n: p for n, p in POINTS.items() if n not in stubbed}


def _hang(copy):
    path = copy / "minidl/autograd/ops/activations.py"
    source, count = re.subn(r"^( *)return grad \* s \* \(1 - s\)$",
                            r"\1while True:  # a student's endless loop\n\1    pass\n\1return grad * s * (1 - s)",
                            path.read_text(), flags=re.M)
    assert count == 1
    path.write_text(source)


def _processes_in(name):
    """The ids of the processes whose working folder is a copy named ``name`` (grading runs pytest in the
    trusted tree it assembles for that copy, a temporary folder of the student's name)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd").removesuffix(" (deleted)")).name == name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    base = tmp_path_factory.mktemp("batch")
    kinds = [make(NAME, base / f"kind{i}", tasks=list(stubbed)) for i, stubbed in enumerate(STUBBED)]
    folder = base / "submissions"
    folder.mkdir()
    for i in range(STUDENTS):
        shutil.copytree(kinds[i % len(kinds)], folder / f"student_{i:02d}")
    _hang(folder / HUNG)
    (folder / "notes").mkdir()                          # not a copy: reported, not fatal
    (folder / "notes" / "todo.txt").write_text("grade ex2\n")
    (folder / ".trash").mkdir()                         # hidden: skipped
    (folder / "grades-old.csv").write_text("a file: skipped\n")
    return folder


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to see leftover processes")
def test_a_class_is_graded_in_parallel_and_a_hanging_copy_is_stopped(submissions, tmp_path):
    seen = []
    start = time.perf_counter()
    rows = grade_submissions(submissions, workers=2, time_limit=TIME_LIMIT,
                             progress=lambda row, done, count: seen.append((row.student, done, count)))
    elapsed = time.perf_counter() - start
    assert [row.student for row in rows] == ["notes"] + [f"student_{i:02d}" for i in range(STUDENTS)]  # by name
    assert sorted(done for _, done, _ in seen) == list(range(1, STUDENTS + 2)) and {c for _, _, c in seen} == {STUDENTS + 1}
    by_name = {row.student: row for row in rows}
    for i in range(STUDENTS):
        row = by_name[f"student_{i:02d}"]
        if row.student == HUNG:
            continue
        solved = _solved(STUBBED[i % len(STUBBED)])
        assert row.status == GRADED, (row.student, row.status)
        assert row.tasks == {n: solved.get(n, 0) for n in POINTS}, row.student
        assert row.total == sum(solved.values()) and row.max_total == 100 and row.assignment == NAME
        first = min(set(POINTS) - set(solved))
        assert row.first_failure.startswith(f"task {first}: NotImplementedError: implement this ("), row.first_failure
        assert set(row.failures) == set(POINTS) - set(solved)
    hung = by_name[HUNG]   # the tests stopped at the limit and scored (task 1's hung: nothing else ran after it)
    assert hung.status == GRADED and hung.total == 0 and hung.tasks == {n: 0 for n in POINTS}
    assert hung.first_failure.startswith(f"task 1: the tests did not finish: grading stopped after {TIME_LIMIT} s "
                                         f"(--time-limit), while "
                                         f"assignments/ex2_sentiment/grading/test_activations.py::")
    assert hung.first_failure.endswith(" ran: an endless loop, or code far too slow")
    assert hung.seconds >= TIME_LIMIT                   # stopped by the limit (its processes: below)
    assert not _processes_in(HUNG), "the hung copy's processes must all be killed"
    notes = by_name["notes"]
    assert notes.status.startswith("not a submission: ") and "assignment.toml" in notes.status and notes.total == 0
    print(f"graded {len(rows)} copies in {elapsed:.0f} s, {sum(row.seconds for row in rows):.0f} s of grading")

    path = write_grades_csv(rows, tmp_path / "out" / "grades.csv")
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == ["student", "total", "task 1", "task 2", "task 3", "task 4", "task 5", "task 6", "status",
                        "first_failure"]
    by_student = {line[0]: line for line in table[1:]}
    assert len(by_student) == STUDENTS + 1
    assert by_student["student_04"][1:8] == ["35", "10", "10", "0", "0", "0", "15"]
    assert by_student["student_04"][8] == GRADED
    assert by_student["student_04"][9].startswith("task 3: NotImplementedError: implement this (ElmanRNN.forward)")
    assert by_student[HUNG][1:9] == ["0"] * 7 + [GRADED]
    assert by_student["notes"][8].startswith("not a submission: ")
    assert [p.name for p in path.parent.iterdir()] == ["grades.csv"], "written atomically: no temporary file left"


def test_a_copy_is_graded_with_the_instructors_tests_and_points(tmp_path):
    """A stubbed copy whose grading tests were emptied, or with a conftest.py that marks every test passed,
    scored 100/100; one with a task's points raised to 1000 scored 1000."""
    folder = tmp_path / "class"
    stubbed = make(NAME, tmp_path / "stubbed", tasks=list(POINTS))
    for student in ("edited_tests", "conftest", "points"):
        shutil.copytree(stubbed, folder / student)
    for test in (folder / "edited_tests" / "assignments" / NAME / "grading").glob("test_*.py"):
        test.write_text("def test_ok():\n    pass\n")
    (folder / "conftest" / "conftest.py").write_text(
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    report = (yield).get_result()\n    report.outcome, report.longrepr = 'passed', None\n")
    manifest = folder / "points" / "assignments" / NAME / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("points = 10", "points = 1000", 1))
    rows = grade_submissions(folder, workers=1, time_limit=TIME_LIMIT, assignment=NAME)
    assert [(row.student, row.status, row.total, row.max_total) for row in rows] == [
        (student, GRADED, 0, 100) for student in ("conftest", "edited_tests", "points")]


def _args(**overrides):
    values = dict(directory=".", submissions=None, csv=None, workers=1, time_limit=30.0, assignment=None, task=None,
                  json=None, reference=None, timeout=600, test_timeout=60)
    return argparse.Namespace(**{**values, **overrides})


def test_the_command_refuses_what_it_cannot_do_before_grading(tmp_path, copies):
    folder = tmp_path / "class"
    folder.mkdir()
    with pytest.raises(AssignmentError, match="--submissions needs --csv FILE"):
        main(_args(submissions=str(folder)))
    with pytest.raises(AssignmentError, match="or --submissions, not both"):
        main(_args(submissions=str(folder), csv="g.csv", directory="copy"))
    with pytest.raises(AssignmentError, match="--json writes the report of one copy"):
        main(_args(submissions=str(folder), csv="g.csv", json="r.json"))
    with pytest.raises(AssignmentError, match="--timeout is the limit of one copy's grading; with --submissions give "
                                              "--time-limit"):   # it was ignored
        main(_args(submissions=str(folder), csv="g.csv", timeout=30))
    with pytest.raises(AssignmentError, match="is a folder; give the path of a file"):
        main(_args(submissions=str(folder), csv=str(tmp_path)))
    with pytest.raises(AssignmentError, match="has no subfolders"):
        submission_folders(folder)
    with pytest.raises(AssignmentError, match="is not a folder"):
        submission_folders(folder / "missing")
    with pytest.raises(AssignmentError, match="is one student copy, not a folder of copies"):
        submission_folders(copies(NAME))
    (folder / "x").mkdir()
    with pytest.raises(AssignmentError, match="--workers must be a whole number >= 1"):
        grade_submissions(folder, workers=0)
    with pytest.raises(AssignmentError, match="--time-limit must be a positive number"):
        grade_submissions(folder, time_limit=0)
    with pytest.raises(AssignmentError, match=r"at most 86,400 \(a day\), got inf"):   # OverflowError for each student
        grade_submissions(folder, time_limit=float("inf"))
    # a typo in the assignment, a task or the reference graded the whole class 0 and replaced the last grades
    csv_file = tmp_path / "grades.csv"
    csv_file.write_text("student,total,task 1,status,first_failure\nalice,10,10,graded,\n")
    for options, message in (({"assignment": "compresion"}, "unknown assignment 'compresion'"),
                             ({"assignment": NAME, "task": [9]}, "ex2_sentiment has no task 9"),
                             ({"task": [1, 1]}, "--task 1 is given more than once"),
                             ({"assignment": NAME, "reference": str(csv_file)}, "it is not a JSON object")):
        with pytest.raises(AssignmentError, match=message):
            main(_args(submissions=str(folder), csv=str(csv_file), **options))
    assert csv_file.read_text().endswith("alice,10,10,graded,\n")


def test_a_task_or_reference_the_copies_assignment_lacks_is_refused_without_assignment(tmp_path, copies):
    """Without --assignment, --task 9 or a --reference of other values graded every student 0 ("not a submission:
    ex2_sentiment has no task 9") and replaced the last grades: they are checked against what the copies are."""
    folder = tmp_path / "class"
    shutil.copytree(copies(NAME), folder / "ann")
    (folder / "notes").mkdir()   # not a copy: no assignment to check against, and not fatal
    csv_file = tmp_path / "grades.csv"
    csv_file.write_text("student,total,task 1,status,first_failure\nalice,10,10,graded,\n")
    for options, message in (({"task": [9]}, "ex2_sentiment has no task 9"),
                             ({"reference": str(csv_file)}, "it is not a JSON object")):
        with pytest.raises(AssignmentError, match=message):
            main(_args(submissions=str(folder), csv=str(csv_file), **options))
    assert csv_file.read_text().endswith("alice,10,10,graded,\n")
    # a stray copy of another assignment: they were checked against each, and no --reference could pass both
    shutil.copytree(copies("mlm_distillation"), folder / "bob")
    with pytest.raises(AssignmentError, match=r"copies are of several assignments \(ex2_sentiment, mlm_distillation\)"):
        main(_args(submissions=str(folder), csv=str(csv_file), task=[1]))


def test_a_csv_below_a_file_is_refused_before_grading(tmp_path, copies):
    """--csv notes.txt/g.csv: only the nearest existing parent's access was checked, so the class was graded and
    the CSV could not be written after the last student."""
    folder = tmp_path / "class"
    shutil.copytree(copies(NAME), folder / "ann")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    with pytest.raises(WriteError, match="notes.txt is a file, so no folder can be made there"):
        main(_args(submissions=str(folder), csv=str(notes / "g.csv")))
    assert notes.read_text() == "mine\n"


def test_the_command_writes_the_csv_and_a_summary(tmp_path, capsys):
    folder = tmp_path / "class"
    (folder / "empty").mkdir(parents=True)            # quick to grade: minidl grade refuses it at once
    assert main(_args(submissions=str(folder), csv=str(tmp_path / "grades.csv"))) == 0
    printed = capsys.readouterr().out
    assert "[1/1] empty: not a submission: " in printed
    assert f"graded 0 of 1 folders, 1 not a submission; wrote {tmp_path / 'grades.csv'}" in printed
    lines = (tmp_path / "grades.csv").read_text().splitlines()
    assert lines[0] == "student,total,status,first_failure" and lines[1].startswith('empty,0,"not a submission: ')


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to see leftover processes")
@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one copy"])
def test_a_terminated_grading_kills_the_students_code(submissions, tmp_path, batch):
    """SIGTERM (kill, a job scheduler's stop) ended minidl grade at once, a batch or one copy's, and left pytest
    and the student's endless loop running with no parent."""
    import signal
    import subprocess
    import sys

    copy = shutil.copytree(submissions / HUNG, tmp_path / "submissions" / HUNG)
    where = (["--submissions", str(copy.parent), "--csv", str(tmp_path / "grades.csv"), "--time-limit"] if batch
             else [str(copy), "--timeout"])
    grading = subprocess.Popen([sys.executable, "-m", "minidl", "grade", *where, str(TIME_LIMIT)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIME_LIMIT
        while not _processes_in(HUNG) and time.monotonic() < deadline and grading.poll() is None:
            time.sleep(0.2)
        assert _processes_in(HUNG), "the grading started"
        time.sleep(1)   # pytest is in the student's loop
        grading.send_signal(signal.SIGTERM)
        _, err = grading.communicate(timeout=30)
        assert grading.returncode == 130 and err.strip().splitlines()[-1] == "minidl grade: interrupted", err
        deadline = time.monotonic() + 10
        while _processes_in(HUNG) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _processes_in(HUNG), "the student's code must not keep running"
        assert not (tmp_path / "grades.csv").exists()
    finally:   # whatever failed, no endless loop is left behind for the rest of the suite
        grading.kill()
        for pid in _processes_in(HUNG):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_batch_options_without_submissions_are_refused(tmp_path):
    """--csv, --workers without --submissions were ignored: the copy was graded and no CSV written, exit 0."""
    from minidl.assignment.grade import main as grade_main

    with pytest.raises(AssignmentError, match="--csv goes with --submissions DIR"):
        grade_main(_args(csv=str(tmp_path / "bob.csv")))
    with pytest.raises(AssignmentError, match="--workers goes with --submissions DIR"):
        grade_main(_args(workers=2))


def test_a_zip_in_the_submissions_is_unpacked_and_graded(tmp_path, copies):
    """A platform's download (alice.zip, bob.zip) was skipped without a word: no row, so no grade."""
    folder = tmp_path / "class"
    folder.mkdir()
    copy = copies(NAME, solution=True)
    shutil.make_archive(str(folder / "bob"), "zip", root_dir=copy.parent, base_dir=copy.name)   # the top folder
    (folder / "carol.zip").write_bytes(b"not a zip")
    shutil.make_archive(str(folder / "dave"), "zip", root_dir=copy / "assignments")            # no minidl/ in it
    rows = {row.student: row for row in grade_submissions(folder, workers=2, time_limit=TIME_LIMIT, tasks=[1])}
    assert sorted(rows) == ["bob", "carol", "dave"]
    assert rows["bob"].status == GRADED and rows["bob"].total == 10, rows["bob"]
    assert rows["carol"].status.startswith("not a submission: carol.zip cannot be unpacked (File is not a zip file)")
    assert rows["dave"].status.startswith("not a submission: the submission has no minidl/ package")
    (folder / "bob").mkdir()
    with pytest.raises(AssignmentError, match=r"holds both bob/ and bob.zip; keep one submission per student"):
        submission_folders(folder)


def test_a_copy_with_symbolic_links_is_graded_alone_and_only_from_its_own_files(tmp_path, copies):
    """A copy whose minidl/assignment was a link to a folder stopped the whole class (rmtree refuses a link), and
    one whose graded file, minidl/ or whole copy was a link to the instructor's solution scored its points."""
    folder, solution = tmp_path / "class", copies(NAME, solution=True)
    for student in ("alice", "bob", "carol"):
        shutil.copytree(copies(NAME), folder / student, symlinks=True)
    (folder / "alice" / "minidl" / "assignment").rename(folder / "alice" / "minidl" / "mine")
    (folder / "alice" / "minidl" / "assignment").symlink_to("mine")
    ops = folder / "bob" / "minidl" / "autograd" / "ops"
    (ops / "activations.py").unlink()
    (ops / "activations.py").symlink_to(solution / "minidl" / "autograd" / "ops" / "activations.py")
    shutil.rmtree(folder / "carol" / "minidl")
    (folder / "carol" / "minidl").symlink_to(solution / "minidl")
    (folder / "dave").mkdir()
    (folder / "dave" / "copy").symlink_to(solution)   # the one folder of an unzipped submission
    rows = {row.student: row for row in grade_submissions(folder, workers=1, time_limit=TIME_LIMIT, tasks=[1])}
    assert (rows["alice"].status, rows["alice"].total) == (GRADED, 0), rows["alice"]
    assert rows["bob"].status == ("not a submission: minidl/autograd/ops/activations.py is a symbolic link to "
                                  f"{solution / 'minidl/autograd/ops/activations.py'}, outside the submission: "
                                  f"grading reads only its own files; put the file itself there"), rows["bob"]
    assert rows["carol"].status.startswith(f"not a submission: minidl is a symbolic link to {solution / 'minidl'},")
    assert rows["dave"].status.startswith("not a submission: the submission has no minidl/ package"), rows["dave"]
    assert (solution / "minidl" / "assignment").is_dir(), "nothing outside the copy is removed"

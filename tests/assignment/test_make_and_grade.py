"""Student copies of every assignment, and their grading: stubs score 0, the reference full marks, and a
wrong backward loses exactly the points of its task."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidl import cli
from minidl.assignment.checks import EXPECTED, check_close
from minidl.assignment.expected import compute_cases, write_expected
from minidl.assignment.grade import (NO_REFERENCE, CheckResult, TaskResult, find_reference, format_report, grade,
                                     locate, report_json)
from minidl.assignment.handout import section_titles, split_sections
from minidl.assignment.make import build, make
from minidl.assignment.manifest import AssignmentError, check_files, find_assignment, known_assignments, load_manifest
from minidl.assignment.stubs import defined_functions

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = known_assignments(REPO)


def test_both_assignments_have_a_manifest():
    assert {"ex2_sentiment", "compression"} <= set(ASSIGNMENTS)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_manifest_names_real_code_tests_and_sections(name):
    manifest = find_assignment(name, REPO)
    check_files(manifest)
    assert manifest.points == 100
    for task in manifest.tasks:
        for target in task.targets + task.hide:
            source = (REPO / target.path).read_text()
            assert target.qualname in defined_functions(ast.parse(source)), f"task {task.number}: {target}"
    grading = {p.relative_to(manifest.folder).as_posix() for p in (manifest.folder / "grading").glob("test_*.py")}
    assert grading == set(manifest.test_files()), "every grading file belongs to a task, and every task's file exists"
    readme, handout = (REPO / "README.md").read_text(), (manifest.folder / "README.md").read_text()
    assert set(manifest.readme_sections) <= set(section_titles(readme))
    assert set(manifest.drop_sections) | {manifest.insert_before} <= set(section_titles(handout))


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_reference_values_are_what_the_reference_code_computes(name, copies):
    """grading/expected.json is written by `minidl assignment expected NAME` from the reference code; nothing in
    the suite ran it, so a changed reference could leave stale values that graded right answers wrong. Every case
    computed now matches the file to the grading tolerance; in a student copy the command is refused."""
    manifest = find_assignment(name, REPO)
    saved = json.loads((manifest.folder / "grading" / EXPECTED).read_text())
    cases = compute_cases(manifest)
    assert cases.keys() == saved.keys() and cases
    for case, values in cases.items():
        assert values.keys() == saved[case].keys()
        for output, value in values.items():
            check_close(f"{case}: {output}", value, saved[case][output], "expected.json against the reference code")
    with pytest.raises(AssignmentError, match="reference values come from the reference code.*not in a student copy"):
        write_expected(name, copies(name))


def _reference_lines(manifest, task):
    """The distinctive lines of a task's reference bodies: lines that occur nowhere else in their file."""
    for target in task.targets + task.hide:
        source = (REPO / target.path).read_text()
        node = defined_functions(ast.parse(source))[target.qualname]
        lines = source.splitlines()
        body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
        inside = set(range(body[0].lineno - 1, body[-1].end_lineno))
        outside = {lines[i].strip() for i in range(len(lines)) if i not in inside}
        for i in sorted(inside):
            line = lines[i].strip()
            if len(line) >= 12 and not line.startswith("#") and line not in outside:
                yield target, line


def _grading_module(name, file):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"grading_{name}_{Path(file).stem}", REPO / "assignments" / name /
                                                  "grading" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_check_gives_no_reference_value_away():
    """A failure printed the reference value ("expected 1.23457, got 2.5"), the answer itself, to a student graded
    with the instructor's values (--reference, Gradescope); it says where and how far off the student's value is."""
    with pytest.raises(AssertionError) as failed:
        check_close("op: out", [1.0, 2.5, 3.0], [1.0, 1.2345678, 3.0], "a context")
    assert str(failed.value) == "op: out[1] is 2.5, off by 1.3; 1 of 3 values differ from the expected ones (a context)"
    with pytest.raises(AssertionError, match=r"op: out has shape \(3,\), expected \(2,\) \(a context\)"):
        check_close("op: out", [1.0, 2.5, 3.0], [1.0, 2.0], "a context")   # shapes are no answers
    for name, file, values, test in [
            ("mlm_distillation", "test_metrics.py", lambda m: {k: [0.4375, 0.4375] for k in m.CALLS}, "test_accuracy"),
            ("compression", "test_lowrank.py", lambda m: {"ranks": [6] * len(m.ENERGIES)},
             "test_rank_chosen_by_energy")]:   # 0.4375 and 6 appear nowhere else in their messages
        module = _grading_module(name, file)
        module.expected = lambda test_file, case, module=module, values=values: values(module)
        with pytest.raises(AssertionError) as failed:
            getattr(module, test)()
        assert "0.4375" not in str(failed.value) and "6" not in str(failed.value), str(failed.value)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_student_copy_holds_no_solution_and_no_leftovers(name, copies):
    copy, manifest = copies(name), find_assignment(name, REPO)
    names = [p.relative_to(copy).as_posix() for p in copy.rglob("*")]
    leaks = [n for n in names if any(part in (".git", ".venv", "__pycache__", "results", "runs") or part.endswith(
        (".pyc", ".egg-info")) for part in n.split("/"))]
    assert not leaks, leaks
    assert sorted(p.name for p in (copy / "assignments").iterdir()) == [name]
    assert {"minidl", "pyproject.toml", "Makefile", "README.md", "assignment.toml"} <= {p.name for p in copy.iterdir()}
    assert not (copy / "tests").exists() and not (copy / "theory").exists()
    for path in manifest.exclude:
        assert not (copy / path).exists(), path
    checked = 0
    for task in manifest.tasks:
        for target, line in _reference_lines(manifest, task):
            assert line not in (copy / target.path).read_text(), f"{target}: {line!r} is still in the copy"
            checked += 1
    assert checked >= 3 * len(manifest.tasks)
    handout = (copy / manifest.handout).read_text()
    assert "## Implementation tasks (graded by `minidl grade`)" in handout
    assert not set(manifest.drop_sections) & set(section_titles(handout))
    assert set(section_titles((copy / "README.md").read_text())) == {f"This copy: {manifest.title}",
                                                                     *manifest.readme_sections}
    marker = (copy / "assignment.toml").read_text()
    assert f'assignment = "{name}"' in marker and 'kind = "student"' in marker
    links = re.findall(r"\]\(([^)#\s]+)\)", (copy / "README.md").read_text())
    assert "docs/graph_example.png" in links   # was missing: the README's picture and the script that draws it
    assert [link for link in links if not link.startswith("http") and not (copy / link).exists()] == []


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_handout_sends_the_student_to_no_code_it_stubs_as_if_written(name, copies):
    """ex2's handout asked students to "read their backward passes and check them against the equations" and to
    "compare with `GRU.backward`": in a copy those are the stubs they write. A stubbed target the handout names
    is said to be theirs to write."""
    copy, manifest = copies(name), find_assignment(name, REPO)
    handout = " ".join((copy / manifest.handout).read_text().split())
    assert "read their backward passes" not in handout
    for target in {t.qualname for task in manifest.tasks for t in task.targets}:
        for said in re.findall(rf"compare (?:it )?with `{re.escape(target)}`[^.]*", handout):
            assert "you write" in said, said


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_copys_readme_and_makefile_offer_only_what_it_holds(name, copies):
    """The copy's README listed theory/ and tests/ under Layout, and its Makefile kept `make theory` ("No module
    named 'theory'") and `make test`, which found no tests/ and ran the grading tests without their reference
    values: the Layout names only paths of the copy, every target's module is in it, and `make test` grades."""
    copy = copies(name)
    layout = dict(split_sections((copy / "README.md").read_text()))["Layout"].split("```")[1]
    paths = re.findall(r"^([\w./-]+)", layout, re.M)
    assert f"assignments/{name}/" in paths and [path for path in paths if not (copy / path).exists()] == []
    makefile = (copy / "Makefile").read_text()
    rules = dict(re.findall(r"^([\w-]+):.*\n((?:\t.*\n?)*)", makefile, re.M))
    assert rules["test"].split() == ["$(BIN)/minidl", "grade"]
    assert set(re.search(r"^\.PHONY:(.*)", makefile, re.M).group(1).split()) == set(rules)
    modules = [module for recipe in rules.values() for module in re.findall(r"python -m ([\w.]+)", recipe)]
    assert [module for module in modules if not (copy / f"{module.replace('.', '/')}.py").is_file()] == []


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_handout_gives_none_of_our_results(name, copies):
    """mlm_distillation's handout kept "## Our results" (its manifest said there was none), and ex2's "Commands"
    gave the 400-word accuracies that write-up task 7 asks for: no figure of our results is in a handout."""
    text = (REPO / "assignments" / name / "README.md").read_text()
    results = "".join(chunk for title, chunk in split_sections(text) if title in ("Our results", "Discussion"))
    handout = (copies(name) / find_assignment(name, REPO).handout).read_text()
    assert "Our results" not in section_titles(handout)
    figures = set(re.findall(r"\b0\.\d{3,}\b", results)) & set(re.findall(r"\b0\.\d{3,}\b", handout))
    assert not figures, f"the handout gives results: {sorted(figures)}"


def test_a_copy_withholds_the_later_exercises_solutions_and_keeps_the_earlier_ones(copies):
    # The package holds every assignment's code: exercise 2's copy held exercise 3's and 4's reference bodies
    # (the compression kernel of distillation among them), and so did its solution copy.
    manifests = {name: find_assignment(name, REPO) for name in ASSIGNMENTS}
    assert [manifests[n].exercise for n in ("ex2_sentiment", "compression", "mlm_distillation")] == [2, 3, 4]
    for name, solution in (("ex2_sentiment", False), ("compression", True)):
        copy = copies(name, solution=solution)
        marker = (copy / "assignment.toml").read_text()
        for other, manifest in manifests.items():
            if other == name:
                continue
            later = manifest.exercise > manifests[name].exercise
            assert (f'"{other}"' in marker.partition("withheld = ")[2].splitlines()[0]) == later, (name, other)
            lines = [(t, line) for task in manifest.tasks for t, line in _reference_lines(manifest, task)]
            assert len(lines) >= 3 * len(manifest.tasks)
            kept = [line for target, line in lines if line in (copy / target.path).read_text()]
            assert kept == ([] if later else [line for _, line in lines]), (name, other, kept[:3])
    stub = (copies("ex2_sentiment") / "minidl/mlm/masking.py").read_text()
    assert "not handed out: mask_tokens is task 1 of mlm_distillation, which comes later in the course" in stub


def test_a_manifest_or_marker_that_is_not_utf8_or_not_toml_is_one_line(tmp_path):
    """A marker saved as Latin-1 ("# café") was a UnicodeDecodeError with no file named."""
    from minidl.assignment.manifest import read_toml

    (tmp_path / "a.toml").write_bytes(b'# caf\xe9\nassignment = "x"\n')
    with pytest.raises(AssignmentError, match=r"a.toml: not UTF-8 \(byte 0xe9 at 5\); TOML files are UTF-8"):
        read_toml(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text("assignment = \n")
    with pytest.raises(AssignmentError, match=r"b.toml: not valid TOML"):
        read_toml(tmp_path / "b.toml")


def test_an_exercise_number_that_is_not_a_positive_integer_is_refused(tmp_path):
    folder = tmp_path / "assignments" / "odd"
    folder.mkdir(parents=True)
    for value in ('"3"', "0", "true"):
        (folder / "manifest.toml").write_text(f'name = "odd"\nexercise = {value}\n[[task]]\ntitle = "t"\npoints = 5\n'
                                              'targets = ["minidl/io.py::write_text"]\ntests = ["grading/test_x.py"]\n')
        with pytest.raises(AssignmentError, match=r"exercise must be a positive integer \(the place in the course\)"):
            load_manifest(folder, root=REPO)


NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def _significant(text):
    """The significant digits of a number as written: 6 for "0.192211", 17 for "1.1713281658728838"."""
    return len(re.sub(r"^[-0.]+|[eE].*$", "", text).replace(".", ""))


def _leaves(value):
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_student_copy_holds_no_expected_value(name, copies):
    # The reference values are the answers of the forward checks: returning them earned full marks while they
    # shipped. No grading/expected.json, and none of its numbers anywhere in the copy (the grading tests
    # included), neither as written in the JSON nor rounded to 6 digits as someone might paste it.
    copy = copies(name)
    assert not list(copy.rglob(EXPECTED))
    cases = json.loads((REPO / "assignments" / name / "grading" / EXPECTED).read_text())
    values = {v for case in cases.values() for array in case.values() for v in _leaves(array) if v != int(v)}
    forms = {form for v in values for form in (repr(v), f"{v:.6g}") if _significant(form) >= 6}
    assert len(forms) >= 100, len(forms)
    found, files = set(), 0
    for path in copy.rglob("*"):
        if path.is_file():
            files += 1
            for token in NUMBER.findall(path.read_text(errors="ignore")):
                found |= {token, f"{float(token):.6g}"} if _significant(token) >= 6 else {token}
    assert files > 100 and len(found) > 100
    leaked = sorted(forms & found)
    assert not leaked, f"the copy holds reference values: {leaked[:10]}"


def test_grading_without_reference_values_scores_what_needs_none_and_says_why(copies, tmp_path):
    # A copy graded by a minidl whose tree holds no reference values (here: the solution copy grading another
    # copy of itself, which has a file planted where copies used to carry them): the planted file is not
    # used, the report says there were none, the checks that need them are "no reference", and the tasks
    # whose checks need none (ex2's sigmoid/tanh and matmul backwards) keep their points. No crash.
    grader = copies("ex2_sentiment", solution=True)
    graded = shutil.copytree(grader, tmp_path / "graded")
    shutil.copy(REPO / "assignments/ex2_sentiment/grading" / EXPECTED, graded / "assignments/ex2_sentiment/grading")
    report = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=str(grader), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-m", "minidl.cli", "grade", str(graded), "--json", str(report)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reference values: none found" in done.stdout and "tasks 3, 4, 5, 6 compare with them" in done.stdout
    result = json.loads(report.read_text())
    assert result["reference"] is None and result["score"] == 20
    for task in result["tasks"]:
        assert task["passed"] == (task["number"] in (1, 2)), task
        lacking = [t for t in task["tests"] if t["outcome"] == "no reference"]
        assert task["lacking_reference"] == len(lacking) and (task["passed"] or lacking)
        assert all(t["outcome"] in ("passed", "no reference") for t in task["tests"]), task
        assert all("ReferenceMissing: this check compares with the instructor's reference values" in t["message"]
                   for t in lacking)
    assert "checks compare with the reference values, which this grading did not have" in done.stdout


def test_a_report_without_reference_values_names_one_task_in_the_singular():
    """It said "tasks 3 compare with them and score 0 here, and are graded" for a single task."""
    lacking = TaskResult(3, "The Elman RNN", 20, 0, [CheckResult("test_rnn.py::test_forward", NO_REFERENCE)])
    report = format_report(find_assignment("ex2_sentiment", REPO), [lacking], 1.0)
    assert "; task 3 compares with them and scores 0 here, and is graded with them by your instructor" in report


def test_the_reference_values_are_found_in_the_repository_or_where_given(copies, tmp_path):
    manifest = locate(copies("compression"))
    file = REPO / "assignments/compression/grading" / EXPECTED
    assert find_reference(manifest) == file   # the repository of the minidl that grades
    for given in (REPO, REPO / "assignments/compression", file.parent, file):
        assert find_reference(manifest, given) == file
    with pytest.raises(AssignmentError, match=r"--reference .*: no expected.json for compression there"):
        find_reference(manifest, tmp_path)


def test_distinctive_reference_lines_are_gone():
    assert "d_pre_r = d_rh * h_prev * r * (1 - r)" in (REPO / "minidl/autograd/ops/recurrent.py").read_text()
    assert "return grad * s * (1 - s)" in (REPO / "minidl/autograd/ops/activations.py").read_text()


def test_every_module_of_a_student_copy_still_imports(copies):
    copy = copies("compression")  # its stubs include a Triton kernel of minidl/kernels/losses.py
    code = ("import importlib, pkgutil, minidl\n"
            "names = [m.name for m in pkgutil.walk_packages(minidl.__path__, 'minidl.')]\n"
            "for name in names: importlib.import_module(name)\n"
            "print(minidl.__file__, len(names))")
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(str(copy / "minidl" / "__init__.py"))


def test_a_copy_whose_own_code_does_not_import_is_graded_and_answered_in_one_line(copies, tmp_path):
    """A SyntaxError in an op the student writes: ``minidl grade`` in the copy (its own minidl) ended in a traceback
    of ``import minidl``, with no report (.minidl-grade.json, which GitHub Classroom's checks read)."""
    copy = shutil.copytree(copies("ex2_sentiment"), tmp_path / "copy")
    with open(copy / "minidl/autograd/ops/activations.py", "a", encoding="utf-8") as f:
        f.write("def unfinished(:\n")
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")

    def minidl(*argv):
        return subprocess.run([sys.executable, "-m", "minidl_script", *argv], cwd=copy, env=env, capture_output=True,
                              text=True, timeout=300)
    graded = minidl("grade", "--task", "1", "--task", "3", "--json", ".minidl-grade.json")
    assert graded.returncode == 0 and "Traceback" not in graded.stderr, graded.stderr[-3000:]
    report = json.loads((copy / ".minidl-grade.json").read_text())
    assert report["score"] == 0 and [task["number"] for task in report["tasks"]] == [1, 3]
    assert all('SyntaxError: invalid syntax (File "minidl/autograd/ops/activations.py", line ' in task["first_failure"]
               for task in report["tasks"]), report   # as in the copy, wherever it is
    refused = minidl("train")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and (
        f"minidl: minidl does not import: SyntaxError: invalid syntax ({copy / 'minidl/autograd/ops/activations.py'}, "
        f"line ") in refused.stderr, refused.stderr
    trusted = minidl("grade", "--task", "1", "--reference", str(REPO))   # (was refused: "... does not parse")
    assert trusted.returncode == 0 and "total 0/10" in trusted.stdout and "SyntaxError" in trusted.stdout, trusted


def test_a_module_that_fails_to_import_is_named_with_its_line(copies, tmp_path):
    """An import of a missing module in a student's op said only "ModuleNotFoundError: No module named ..." in the
    report, the CSV and --json: no file, no line, in a copy of many files."""
    imports = "from ..function import Function, OpError, ShapeError\n"
    copy = _patched(copies, tmp_path, "ex2_sentiment", "minidl/autograd/ops/recurrent.py", imports,
                    imports + "import nonexistent_helper_mod\n")
    line = (copy / "minidl/autograd/ops/recurrent.py").read_text().splitlines().index("import nonexistent_helper_mod")
    _, (elman,), _ = grade(copy, tasks=[3])
    assert elman.first_failure().message == (
        "could not run assignments/ex2_sentiment/grading/test_elman.py: ModuleNotFoundError: No module named "
        f"'nonexistent_helper_mod' (minidl/autograd/ops/recurrent.py, line {line + 1})"), elman.first_failure()

def test_make_refuses_a_folder_that_is_not_empty_and_an_unknown_name(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    with pytest.raises(AssignmentError, match="already exists and is not an empty folder"):
        make("ex2_sentiment", tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["mine.txt"]
    with pytest.raises(AssignmentError, match="unknown assignment 'ex3'; known assignments: compression, ex2_sentiment"):
        make("ex3", tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # nothing half-written left behind
    from minidl.io import WriteError

    with pytest.raises(WriteError, match=r"mine.txt is a file, so no folder can be made there"):  # was a temp name
        make("ex2_sentiment", tmp_path / "taken" / "mine.txt" / "copy")
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"


def test_make_says_a_file_given_as_out_is_a_file(tmp_path):
    """--out notes.txt was refused as 'already exists and is not an empty folder'."""
    from minidl.io import WriteError

    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(WriteError, match=r"--out .*notes.txt is a file; give a folder"):
        make("ex2_sentiment", notes)
    assert notes.read_text() == "keep me"


def test_a_solution_copy_refuses_tasks_and_a_student_copy_as_root(copies, tmp_path):
    """make --solution ignored --tasks, and with --root a student copy wrote a "solution copy" full of stubs."""
    with pytest.raises(AssignmentError, match="--solution keeps every task's reference body and --tasks"):
        make("ex2_sentiment", tmp_path / "solution", tasks=[1], solution=True)
    with pytest.raises(AssignmentError, match="is a student copy .*give the repository as --root"):
        make("ex2_sentiment", tmp_path / "solution", root=copies("ex2_sentiment"), solution=True)
    assert not list(tmp_path.iterdir())


def test_a_target_that_is_not_in_the_source_is_named(tmp_path):
    folder = tmp_path / "assignments" / "broken"
    (folder / "grading").mkdir(parents=True)
    (folder / "grading" / "test_x.py").write_text("def test_x():\n    pass\n")
    (folder / "README.md").write_text("# Broken\n")
    (folder / "manifest.toml").write_text(
        'name = "broken"\n[[task]]\ntitle = "t"\npoints = 5\n'
        'targets = ["minidl/autograd/ops/activations.py::Sigmoid.backwards"]\ntests = ["grading/test_x.py"]\n')
    with pytest.raises(AssignmentError, match=r"minidl/autograd/ops/activations.py defines no function or method "
                                              r"Sigmoid\.backwards; it defines: Sigmoid\.forward, Sigmoid\.backward"):
        build(load_manifest(folder, root=REPO), tmp_path / "out")


def test_grade_explains_what_it_cannot_grade(tmp_path):
    with pytest.raises(AssignmentError, match="is not a student copy .* make one with: minidl assignment make"):
        locate(tmp_path)
    with pytest.raises(AssignmentError, match=r"not a student copy .* pass --assignment \(compression \| ex2_sentiment \| mlm_distillation\)"):
        locate(REPO)
    with pytest.raises(AssignmentError, match="has no assignments/ex3/manifest.toml; it has: compression, ex2_sentiment, mlm_distillation"):
        locate(REPO, "ex3")


def test_grade_in_a_subfolder_of_a_copy_names_the_copy(copies):
    """Run in a copy's minidl/autograd/, minidl grade said "make one with: minidl assignment make", as if there
    were no copy: it names the copy above to grade."""
    copy = copies("ex2_sentiment")
    with pytest.raises(AssignmentError, match=f"lies inside the student copy {re.escape(str(copy))}: run minidl grade"):
        locate(copy / "minidl" / "autograd")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_student_copy_scores_0_with_every_task_explained(name, copies, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert cli.main(["grade", str(copies(name)), "--json", str(report)]) == 0
    printed, said = capsys.readouterr()
    tasks = len(find_assignment(name, REPO).tasks)
    assert said == (f"running the grading tests of {name} on {copies(name)} ({tasks} of {tasks} tasks; at most "
                    f"600 s, 60 s a test) ...\n")   # nothing was said for as long as the tests ran
    result = json.loads(report.read_text())
    assert result["assignment"] == name and result["score"] == 0 and result["max_score"] == 100
    for task in result["tasks"]:
        assert task["score"] == 0 and not task["passed"]
        assert task["first_failure"].startswith("NotImplementedError: implement this (")
        assert f"see implementation task {task['number']} of the handout" in task["first_failure"]
    for task in result["tasks"]:
        assert f"  task {task['number']}  0/{task['points']}  FAIL  {task['title']}" in printed
    assert "\ntotal 0/100 (0 of" in printed
    assert not list(copies(name).rglob("__pycache__")), "grading must not leave bytecode in the copy"


def test_an_instructors_grade_of_one_copy_uses_the_instructors_tests_and_points(copies, tmp_path, capsys):
    """minidl grade COPY --reference REPOSITORY ran the copy's own tests, manifest and conftest.py: a stubbed
    copy with a conftest.py that marks every test passed scored 100/100, and 1000 with a task's points raised."""
    copy = shutil.copytree(copies("ex2_sentiment"), tmp_path / "alice")
    (copy / "conftest.py").write_text(
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    report = (yield).get_result()\n    report.outcome, report.longrepr = 'passed', None\n")
    manifest = copy / "assignments/ex2_sentiment/manifest.toml"
    manifest.write_text(manifest.read_text().replace("points = 10", "points = 1000", 1))
    report = tmp_path / "report.json"
    assert cli.main(["grade", str(copy), "--reference", str(REPO), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert (result["score"], result["max_score"], result["graded"]) == (0, 100, str(copy))
    assert f"graded: {copy} (its minidl/ in the instructor's copy" in capsys.readouterr().out
    assert cli.main(["grade", str(copy), "--task", "1"]) == 0   # the student's own check says it is one
    assert "a self-check, not the instructor's grade" in capsys.readouterr().out


def test_an_instructors_grade_names_the_students_files_not_its_temporary_folder(copies, tmp_path):
    """The messages of a grade with --reference named the student's files in the folder it grades in, gone when the
    report is read ("SyntaxError ... (File "/tmp/minidl-trusted-XXXX/work/dave/minidl/..."); they name them as in
    the copy, for a copy nested in a folder (or zipped) too."""
    copy = shutil.copytree(copies("ex2_sentiment"), tmp_path / "dave" / "ex2-copy")
    with open(copy / "minidl/autograd/ops/activations.py", "a", encoding="utf-8") as f:
        f.write("def unfinished(:\n")
    report = tmp_path / "report.json"
    assert cli.main(["grade", str(tmp_path / "dave"), "--reference", str(REPO), "--task", "1", "--json",
                     str(report)]) == 0
    failure = json.loads(report.read_text())["tasks"][0]["first_failure"]
    assert 'SyntaxError: invalid syntax (File "minidl/autograd/ops/activations.py", line ' in failure, failure


def test_the_grading_process_runs_none_of_the_students_code(copies, tmp_path):
    """minidl grade in the copy imported its minidl/ in the grading process itself: a module that never ends loading
    hung it silently before any time limit, a breakpoint() waited for the terminal's keyboard and was then called an
    endless loop. The tests' processes run the code, under the limits, with no input."""
    copy = shutil.copytree(copies("ex2_sentiment", solution=True), tmp_path / "copy")
    ops = copy / "minidl/autograd/ops/activations.py"
    reference = ops.read_text()
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")

    def minidl(*argv):
        return subprocess.run([sys.executable, "minidl_script.py", *argv], cwd=copy, env=env, capture_output=True,
                              text=True, timeout=120)
    ops.write_text(reference + "\nimport time\nwhile True:\n    time.sleep(0.2)\n")
    hung = minidl("grade", "--task", "1", "--timeout", "6")
    assert hung.returncode == 0 and "total 0/10" in hung.stdout, hung.stdout + hung.stderr
    assert "grading stopped after 6 s (--timeout)" in hung.stdout, hung.stdout
    ops.write_text(reference.replace("return grad * s * (1 - s)", "breakpoint(); return grad * s * (1 - s)"))
    waiting = minidl("grade", "--task", "1", "--test-timeout", "30")
    assert "a breakpoint() (or pdb.set_trace()) is left in the code: remove it" in waiting.stdout, waiting.stdout
    assert "ran longer than" not in waiting.stdout, waiting.stdout


def test_a_copy_of_another_assignment_is_refused_in_one_line(copies, tmp_path, capsys):
    """graded --assignment ex2_sentiment, an unmodified compression copy (which holds ex2's solutions, as later
    exercises' copies do) scored 100/100."""
    copy = copies("compression")
    assert cli.main(["grade", str(copy), "--reference", str(REPO), "--assignment", "ex2_sentiment"]) == 1
    assert capsys.readouterr().err == (f"minidl grade: {copy}: the submission is a copy of compression, not of "
                                       f"ex2_sentiment; submit your copy of ex2_sentiment\n")


def test_a_failure_message_leaves_out_pytests_explanation_of_the_assert():
    message = ("AssertionError: accuracy(...)['top5'] = 0.5, not the expected share of the cases (a float)\n"
               "assert (True and 0.125 < 1e-12)\n +  where True = isinstance(0.5, (float,))\n"
               " +  and   0.125 = abs((0.5 - 0.625))")
    from minidl.assignment.grade import plain

    assert plain(message) == "accuracy(...)['top5'] = 0.5, not the expected share of the cases (a float)"
    task = TaskResult(4, "Accuracy", 20, 0, [CheckResult("test_metrics.py::test_accuracy", "failed", message)])
    written = report_json(find_assignment("mlm_distillation", REPO), [task], 1.0)["tasks"][0]["tests"][0]["message"]
    assert "0.625" not in written and written.startswith("accuracy(...)"), written   # the JSON kept pytest's lines


def test_the_reference_scores_full_marks(copies):
    # ex2 on a solution copy (which shows the copy is self-contained), compression on the repository itself
    for directory, name in ((copies("ex2_sentiment", solution=True), None), (REPO, "compression")):
        manifest, results, _ = grade(directory, name)
        failures = {r.number: r.first_failure().message for r in results if not r.passed}
        assert not failures and sum(r.score for r in results) == 100, failures


def _patched(copies, tmp_path, name, path, old, new):
    copy = shutil.copytree(copies(name, solution=True), tmp_path / name)
    source = (copy / path).read_text()
    assert source.count(old) == 1
    (copy / path).write_text(source.replace(old, new))
    return copy


@pytest.mark.parametrize("name, path, old, new, wrong, other, explained", [
    ("ex2_sentiment", "minidl/autograd/ops/activations.py", "return grad * s * (1 - s)",
     "return 2 * grad * s * (1 - s)", 1, 4, "Sigmoid.backward: dL/dx["),
    ("ex2_sentiment", "minidl/autograd/ops/recurrent.py", "d_pre_h = dh * z * (1 - h_tilde * h_tilde)",
     "d_pre_h = 2 * dh * z * (1 - h_tilde * h_tilde)", 4, 1, "GRU.backward: dL/dx_proj["),
    ("compression", "minidl/compress/distill.py", "d_soft = temperature * (xp.exp(a) - xp.exp(b))",
     "d_soft = 2 * temperature * (xp.exp(a) - xp.exp(b))", 1, 2, "DistillationLoss.backward (kl, alpha 0.3, T 2.5): "
                                                                  "dL/dstudent["),
], ids=["sigmoid", "gru", "distillation"])
def test_a_wrong_backward_loses_exactly_its_task(copies, tmp_path, name, path, old, new, wrong, other, explained):
    # A factor of 2 in one backward: that task scores 0, another (which shares no code with it) keeps its points.
    # test_the_reference_scores_full_marks shows that every task passes without the change.
    copy = _patched(copies, tmp_path, name, path, old, new)
    _, results, _ = grade(copy, tasks=[wrong, other])
    by_number = {r.number: r for r in results}
    assert by_number[wrong].score == 0 and by_number[other].passed
    message = by_number[wrong].first_failure().message
    assert explained in message and " expected " in message and ", got " in message, message
    if wrong == 1 and name == "ex2_sentiment":  # the whole gradient doubled: the hint names the factor
        assert "got/expected = 2" in message, message


def test_mlm_distillation_reference_scores_full_marks_and_a_wrong_measure_loses_its_task(copies, tmp_path):
    # the masked-LM assignment has no hand-written backward; a wrong agreement (the teacher's
    # second choice read as its first) must cost task 4 and nothing else
    _, results, _ = grade(REPO, "mlm_distillation")
    assert sum(r.score for r in results) == 100, {r.number: r.first_failure().message for r in results if not r.passed}
    copy = _patched(copies, tmp_path, "mlm_distillation", "minidl/mlm/evaluate.py",
                    "hits = student_choices == teacher_choices[:, :1]", "hits = student_choices == teacher_choices[:, 1:2]")
    _, results, _ = grade(copy, tasks=[4, 1])
    by_number = {r.number: r for r in results}
    assert by_number[4].score == 0 and by_number[1].passed
    assert "agreement(" in by_number[4].first_failure().message and " expected " in by_number[4].first_failure().message


def test_list_and_make_print_the_tasks_the_copy_and_what_is_withheld(tmp_path, capsys):
    """What `assignment list` and `assignment make` print ran in no test (coverage): every task with its points
    and targets; the copy, its handout, the later exercise whose tasks are stubs too, and how to grade it."""
    from minidl.cli import main

    assert main(["assignment", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    manifest = find_assignment("compression", REPO)
    at = listed.index(f"compression: {manifest.title} (100 points)")
    assert listed[at + 1] == f"  1. {manifest.tasks[0].title} ({manifest.tasks[0].points} points)"
    assert listed[at + 2] == f"       {manifest.tasks[0].targets[0]}"
    copy = tmp_path / "copy"
    assert main(["assignment", "make", "compression", "--out", str(copy), "--tasks", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote the student copy of compression to {copy}",
        f"  stubbed tasks: 2 of 5; the handout: {copy / manifest.handout}",
        "  also stubbed, as later in the course: every task of mlm_distillation (exercise 4)",
        f"  grade it with: minidl grade {copy}"]


def test_list_says_where_it_found_no_assignments(tmp_path, capsys):
    """It printed nothing and exited 0 for a --root without assignments."""
    from minidl.cli import main

    assert main(["assignment", "list", "--root", str(tmp_path)]) == 1
    assert "no assignments found" in capsys.readouterr().err


def test_a_reference_without_the_assignments_values_is_refused_before_grading(copies, tmp_path):
    """A text file, or another assignment's expected.json, as --reference graded a correct copy 0
    with exit 0 (the reference's fault blamed on the student)."""
    manifest = locate(copies("compression"))
    notes = tmp_path / "notes.txt"
    notes.write_text("not json")
    with pytest.raises(AssignmentError, match="--reference .*notes.txt: it is not a JSON object of reference values"):
        find_reference(manifest, notes)
    other = REPO / "assignments/ex2_sentiment/grading" / EXPECTED
    with pytest.raises(AssignmentError, match="it lacks the cases .* of compression; give that assignment's"):
        find_reference(manifest, other)


def test_a_deleted_grading_file_fails_its_task_only(copies, tmp_path):
    """pytest stopped for every task on the missing path: 0/100, task 1 blamed on a file that was there."""
    copy = shutil.copytree(copies("ex2_sentiment", solution=True), tmp_path / "copy")
    (copy / "assignments" / "ex2_sentiment" / "grading" / "test_matmul.py").unlink()
    _, results, _ = grade(copy, tasks=[1, 2])
    by_number = {r.number: r for r in results}
    assert by_number[1].passed and by_number[2].score == 0
    assert by_number[2].first_failure().message == ("assignments/ex2_sentiment/grading/test_matmul.py is missing: "
                                                    "restore it (minidl assignment make writes it)")


def test_a_time_limit_keeps_the_points_of_the_tasks_that_finished(copies, tmp_path):
    """An endless loop in one task zeroed every task, and the message ended at "(--timeout): "."""
    copy = _patched(copies, tmp_path, "ex2_sentiment", "minidl/autograd/ops/recurrent.py",
                    "d_pre_h = dh * z * (1 - h_tilde * h_tilde)", "while True:\n                pass")
    _, results, _ = grade(copy, tasks=[1, 4], timeout=40)
    by_number = {r.number: r for r in results}
    assert by_number[1].passed and by_number[4].score == 0
    message = by_number[4].first_failure().message
    assert message.startswith("the tests did not finish: grading stopped after 40 s (--timeout), while "
                              "assignments/ex2_sentiment/grading/test_gru.py::"), message


def test_a_test_past_its_own_limit_fails_and_the_tests_after_it_run(copies, tmp_path):
    """An endless loop in task 4 left tasks 5 and 6 "not run" (0 points) after the whole --timeout."""
    copy = _patched(copies, tmp_path, "ex2_sentiment", "minidl/autograd/ops/recurrent.py",
                    "d_pre_h = dh * z * (1 - h_tilde * h_tilde)", "while True:\n                pass")
    _, results, _ = grade(copy, tasks=[1, 4, 6], timeout=300, test_timeout=2)
    by_number = {r.number: r for r in results}
    assert by_number[1].passed and by_number[6].passed and by_number[4].score == 0
    failed = [t for t in by_number[4].tests if t.outcome != "passed"]
    assert failed and [t.outcome for t in failed] == ["failed"] + ["not run"] * (len(failed) - 1), [
        (t.outcome, t.message) for t in failed]   # the rest of the hung test's task did not run
    assert failed[0].message == ("this test ran longer than 2 s (--test-timeout) and was stopped: an endless loop, "
                                 "or code far too slow; the tests after it ran in a new process"), failed[0].message
    with pytest.raises(AssignmentError, match=r"--test-timeout must be a positive number of seconds"):
        grade(copy, tasks=[1], test_timeout=0)


def test_a_test_file_whose_import_never_ends_fails_its_task_and_the_other_files_run(copies, tmp_path):
    """A module that never finished loading, imported by task 6's test_pooling.py alone, hung pytest's collection,
    which --test-timeout did not count: the whole --timeout passed and every task scored 0, "the tests did not run"."""
    copy = shutil.copytree(copies("ex2_sentiment", solution=True), tmp_path / "copy")
    module = copy / "minidl/models/token_mlp.py"
    module.write_text(module.read_text() + "import time\nwhile True:\n    time.sleep(0.2)\n")
    line = len(module.read_text().splitlines())
    _, (activations, pooling), _ = grade(copy, tasks=[1, 6], timeout=40, test_timeout=3)
    assert activations.passed and pooling.score == 0, pooling.first_failure()
    assert pooling.first_failure().message == (
        "could not run assignments/ex2_sentiment/grading/test_pooling.py: collecting test_pooling.py took longer than "
        f"3 s (--test-timeout) and was stopped in minidl/models/token_mlp.py, line {line}: a module that never "
        "finishes loading, or code far too slow"), pooling.first_failure()


def test_after_a_test_past_its_own_limit_the_rest_of_its_task_is_not_run(copies, tmp_path):
    """Every test of a task whose forward loops spent --test-timeout of the one --timeout, so a few endless loops
    left the correct tasks after them "not run": once one test of a task ran too long, its other tests are not."""
    copy = _patched(copies, tmp_path, "ex2_sentiment", "minidl/autograd/ops/recurrent.py",
                    "def forward(ctx, x_proj, h0, U_zr, U_h):\n", "def forward(ctx, x_proj, h0, U_zr, U_h):\n"
                                                                  "        while True:\n            pass\n")
    _, results, _ = grade(copy, tasks=[4, 6], timeout=300, test_timeout=2)
    gru, pooling = results
    assert pooling.passed and gru.score == 0
    hung, *rest = gru.tests
    assert hung.outcome == "failed" and hung.message.startswith("this test ran longer than 2 s"), hung.message
    assert rest and {(t.outcome, t.message) for t in rest} == {
        ("not run", f"not run: {hung.id.split('::')[-1]} of the same task ran longer than 2 s (--test-timeout), so "
                   f"the task has failed already")}, [(t.outcome, t.message) for t in rest]


def test_the_tests_a_hung_test_kept_from_running_are_not_run_not_failed(tmp_path):
    """They had the outcome "failed" (the student's code blamed for a test that never ran), and the report counted
    them as failed checks; the first failure shown could be one of them rather than the test that hung."""
    from types import SimpleNamespace

    from minidl.assignment.grade import _rest_of_task

    manifest = SimpleNamespace(folder=tmp_path / "a", root=tmp_path)
    nodes = [f"a/grading/test_custom.py::{name}" for name in ("test_hang", "test_after")]
    merged = {"collected": nodes, "tests": {nodes[0]: {"outcome": "failed"}}}
    rest = _rest_of_task(manifest, [SimpleNamespace(tests=["grading/test_custom.py"])], nodes[0], merged, 3)
    assert [entry["outcome"] for entry in rest.values()] == ["not run"], rest
    task = TaskResult(4, "The GRU", 20, 0, [CheckResult("test_b.py::test_later", **rest[nodes[1]]),
                                            CheckResult("test_a.py::test_hang", "failed", "ran longer than 3 s"),
                                            CheckResult("test_a.py::test_ok", "passed")])
    assert task.first_failure().id == "test_a.py::test_hang"
    report = format_report(find_assignment("ex2_sentiment", REPO), [task], 1.0)
    assert "1 of 3 checks failed, 1 not run; the first, test_hang:" in report, report


def test_grading_one_copy_says_which_test_still_runs(tmp_path, monkeypatch):
    """A hung test left the terminal silent for the whole --test-timeout (60 s): grading one copy says once which test
    still runs, and when it will be stopped."""
    import importlib

    grading = importlib.import_module("minidl.assignment.grade")   # the package's "grade" is the function
    monkeypatch.setattr(grading, "STILL_RUNNING", 0.4)
    results, heard = tmp_path / "results.json", []
    results.write_text(json.dumps({"running": "a/grading/test_gru.py::test_x"}))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = grading._watch(process, results, float("inf"), 1.5, heard.append)
    finally:
        process.kill()
        process.wait()
    assert status == grading.TOO_SLOW
    assert heard == ["still running a/grading/test_gru.py::test_x (0.4 s; stopped at 1.5 s, --test-timeout)"], heard
    heard.clear()   # --timeout's end comes first: it said "stopped at 60 s, --test-timeout" of a test stopped at 1 s
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert grading._watch(process, results, time.monotonic() + 1.5, 30, heard.append) is None
    finally:
        process.kill()
        process.wait()
    assert len(heard) == 1 and re.search(r"\(0\.4 s; stopped at 1(\.\d+)? s, the time limit\)$", heard[0]), heard


def test_a_process_that_exits_mid_test_fails_that_test_and_grades_the_others(copies, tmp_path):
    """os._exit in a student's backward: every task read "the tests did not run: pytest gave no output";
    later, the tasks whose tests came after it (task 6's test_pooling.py) still scored 0."""
    copy = _patched(copies, tmp_path, "ex2_sentiment", "minidl/autograd/ops/recurrent.py",
                    "d_pre_h = dh * z * (1 - h_tilde * h_tilde)", "import os; os._exit(0)")
    _, results, _ = grade(copy, tasks=[1, 4, 6])
    by_number = {r.number: r for r in results}
    assert by_number[1].passed and by_number[6].passed and by_number[4].score == 0
    failed = [t for t in by_number[4].tests if t.outcome != "passed"]
    assert failed and all(t.id.startswith("assignments/ex2_sentiment/grading/test_gru.py::") for t in failed)
    assert failed[0].message == ("the grading process ended (exit status 0) while this test ran: os._exit, a crash "
                                 "or a signal; the tests after it ran in a new process"), failed[0].message
    assert all(t.outcome == "failed" for t in failed), [t.outcome for t in failed]    # each ran, none "not run"


def test_a_task_given_twice_or_a_limit_past_a_day_is_refused_before_grading(copies):
    """--task 1 --task 1 graded task 1 twice and counted its points twice (20/20); --timeout 1e7 was an
    OverflowError traceback after the tests had started."""
    copy = copies("ex2_sentiment", solution=True)
    with pytest.raises(AssignmentError, match="--task 1 is given more than once; give each task once"):
        grade(copy, tasks=[1, 1])
    with pytest.raises(AssignmentError, match=r"--timeout must be a positive number of seconds, at most 86,400"):
        grade(copy, tasks=[1], timeout=1e7)


def test_the_rest_of_a_hung_task_leaves_a_test_another_task_shares(tmp_path):
    """Once a test of a task hung, the task's tests not yet run were marked failed, also one another task names
    (file.py::test_ok inside the hung task's whole file.py): that task lost points for a passing test."""
    from types import SimpleNamespace

    from minidl.assignment.grade import _rest_of_task

    manifest = SimpleNamespace(folder=tmp_path / "a", root=tmp_path)
    hung = SimpleNamespace(tests=["grading/test_custom.py"])
    sharing = SimpleNamespace(tests=["grading/test_custom.py::test_ok"])
    nodes = [f"a/grading/test_custom.py::{name}" for name in ("test_hang", "test_after", "test_ok")]
    merged = {"collected": nodes, "tests": {nodes[0]: {"outcome": "failed"}}}   # the hung one, recorded
    assert list(_rest_of_task(manifest, [hung, sharing], nodes[0], merged, 3)) == [nodes[1]]

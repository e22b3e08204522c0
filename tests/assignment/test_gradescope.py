"""The Gradescope autograder zip, run as Gradescope runs it (in a temporary /autograder, with this interpreter
instead of setup.sh's environment), and the GitHub Classroom workflow."""
import argparse
import json
import os
import shlex
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from minidl.assignment.gradescope import (autograde, build_autograder, classroom_workflow, main,
                                         write_classroom_workflow)
from minidl.assignment.make import make
from minidl.assignment.manifest import AssignmentError

NAME = "ex2_sentiment"
POINTS = {1: 10, 2: 10, 3: 20, 4: 25, 5: 20, 6: 15}
# https://gradescope-autograders.readthedocs.io/en/latest/specs/ : the keys of results.json and of each test
RESULT_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
               "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def _unzip(archive, folder):
    """Extract like Gradescope's image build, keeping the modes stored in the zip (run_autograder: executable)."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            path = Path(z.extract(info, folder))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)
        return z.namelist()


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """(/autograder as a temporary folder with source/ unpacked from the zip, the zip's member names)."""
    base = tmp_path_factory.mktemp("gradescope")
    archive = build_autograder(NAME, base / "autograder.zip")
    root = base / "autograder"
    names = _unzip(archive, root / "source")
    return root, names


def _check_schema(results):
    assert set(results) <= RESULT_KEYS, set(results) - RESULT_KEYS
    assert isinstance(results["score"], (int, float)) and results["visibility"] in VISIBILITY
    assert isinstance(results["output"], str) and isinstance(results["execution_time"], int)
    for test in results["tests"]:
        assert set(test) <= TEST_KEYS, set(test) - TEST_KEYS
        assert isinstance(test["name"], str) and isinstance(test["output"], str) and test["output"]
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert isinstance(test["number"], str) and test["status"] in ("passed", "failed")
        assert test["visibility"] in VISIBILITY
    assert results["score"] == sum(test["score"] for test in results["tests"])


def test_the_zip_has_what_gradescope_needs_and_no_answers(autograder):
    root, names = autograder
    source = root / "source"
    assert {"setup.sh", "run_autograder"} <= set(names), "both at the top of the zip, not in a folder"
    for script in ("setup.sh", "run_autograder"):
        assert os.access(source / script, os.X_OK) and (source / script).read_text().startswith("#!/usr/bin/env bash")
    setup = (source / "setup.sh").read_text()
    assert "pip\" install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert '"$ROOT/source/grader"' in setup and "pytest" in setup
    assert (source / "grader" / "assignment.toml").is_file()
    assert (source / "reference" / "expected.json").read_bytes() == \
        (Path(__file__).resolve().parents[2] / "assignments" / NAME / "grading" / "expected.json").read_bytes()
    assert not [n for n in names if n.startswith("grader/") and n.endswith("expected.json")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    activations = (source / "grader/minidl/autograd/ops/activations.py").read_text()
    assert "return grad * s * (1 - s)" not in activations and "NotImplementedError" in activations


def _tamper(copy):
    """What a submission might try: checks that check nothing, and a grading test that always passes."""
    checks = copy / "minidl/assignment/checks.py"
    checks.write_text(checks.read_text() + "\n\ndef check_gradients(*args, **kwargs):\n    pass\n\n\n"
                                           "def check_backends(*args, **kwargs):\n    pass\n")
    (copy / "assignments" / NAME / "grading" / "test_matmul.py").write_text("def test_matmul():\n    pass\n")


def test_run_autograder_grades_a_submission_into_results_json(autograder):
    root, _ = autograder
    copy = make(NAME, root / "submission" / "my-copy", tasks=[2, 3, 4, 5])  # tasks 1 and 6 keep the reference code
    _tamper(copy)
    (root / "submission" / "__MACOSX").mkdir()   # what a zip made on macOS unpacks to, beside the copy
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), MINIDL_AUTOGRADER_PYTHON=sys.executable)
    done = subprocess.run([str(root / "source" / "run_autograder")], env=env, cwd=root.parent, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    _check_schema(results)
    assert [test["number"] for test in results["tests"]] == [str(n) for n in POINTS]
    assert {int(t["number"]): t["max_score"] for t in results["tests"]} == POINTS
    scores = {int(t["number"]): t["score"] for t in results["tests"]}
    assert scores == {1: 10, 2: 0, 3: 0, 4: 0, 5: 0, 6: 15}, "the tampered checks and test changed nothing"
    assert results["score"] == 25 and results["output"].startswith("total 25/100 (2 of 6 tasks passed)")
    for test in results["tests"]:
        if test["score"]:
            assert test["status"] == "passed" and test["output"] == "passed"
        else:
            assert test["status"] == "failed" and test["output"].startswith("NotImplementedError: implement this (")
            assert f"see implementation task {test['number']} of the handout" in test["output"]
    assert "total 25/100" in done.stdout


def test_a_submission_without_minidl_scores_0_and_says_why(autograder, tmp_path):
    shared, _ = autograder
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "answers.py").write_text("print('hello')\n")
    os.symlink(shared / "source", root / "source")
    assert autograde(str(root), NAME, "30") == 0
    results = json.loads((root / "results" / "results.json").read_text())
    _check_schema(results)
    assert results["score"] == 0 and "has no minidl/ package" in results["output"]
    assert [t["max_score"] for t in results["tests"]] == list(POINTS.values())
    assert all(t["score"] == 0 and "submit the top folder of your copy" in t["output"] for t in results["tests"])


def test_a_copy_of_another_assignment_scores_0_and_says_which_it_is(autograder, tmp_path):
    """A copy of a later exercise holds this one's solutions (later copies keep earlier bodies): submitted here
    unmodified, it scored 100/100."""
    shared, _ = autograder
    root = tmp_path / "autograder"
    root.mkdir()
    make("compression", root / "submission")
    os.symlink(shared / "source", root / "source")
    assert autograde(str(root), NAME, "60") == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0, results["output"]
    assert ("the submission is a copy of compression, not of ex2_sentiment; submit your copy of ex2_sentiment"
            in results["output"]), results["output"]


def test_the_autograders_own_failure_is_said_in_results_json_and_raised(autograder, tmp_path, monkeypatch):
    """Gradescope shows no result at all for a run that leaves no results.json (this branch ran in no test)."""
    from minidl.assignment import gradescope

    shared, _ = autograder
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    os.symlink(shared / "source", root / "source")

    def broken(*args):
        raise RuntimeError("no space left on the device")
    monkeypatch.setattr(gradescope, "assemble", broken)
    with pytest.raises(RuntimeError, match="no space left"):       # raised: the run's log shows the traceback
        autograde(str(root), NAME, "30")
    results = json.loads((root / "results" / "results.json").read_text())
    _check_schema(results)
    assert results["score"] == 0
    assert results["output"] == "no points: error: the autograder failed: no space left on the device"


def test_the_command_builds_the_zip_and_refuses_bad_arguments(tmp_path, capsys):
    args = argparse.Namespace(name=NAME, out=str(tmp_path / "ag.zip"), root=None, reference=None, time_limit=300.0)
    assert main(args) == 0
    assert f"wrote {tmp_path / 'ag.zip'}" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "ag.zip") as z:
        run = z.read("run_autograder").decode()
        assert stat.S_IMODE(z.getinfo("run_autograder").external_attr >> 16) == 0o755
    assert f'"$ROOT" {NAME} 300 "$ROOT/source/reference/expected.json"' in run
    with pytest.raises(AssignmentError, match="Gradescope takes a .zip file"):
        build_autograder(NAME, tmp_path / "ag.tar")
    with pytest.raises(AssignmentError, match="--time-limit must be a positive number"):
        build_autograder(NAME, tmp_path / "x.zip", time_limit=0)
    with pytest.raises(AssignmentError, match="unknown assignment 'ex9'"):
        build_autograder("ex9", tmp_path / "x.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ag.zip"]


def _check_command(command, report, folder):
    """Run a task's autograding command (with this interpreter as `python`) next to a grading report."""
    (folder / ".minidl-grade.json").write_text(json.dumps(report))
    assert command.startswith("python -c ")
    done = subprocess.run(shlex.quote(sys.executable) + command[len("python"):], shell=True, cwd=folder,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.strip()


def test_the_classroom_workflow_is_one_autograding_test_per_task(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = write_classroom_workflow(tmp_path / "copy", NAME)   # what make.py calls for a copy it builds
    assert path == tmp_path / "copy" / ".github" / "workflows" / "classroom.yml"
    text = path.read_text()
    assert text == classroom_workflow(NAME)
    workflow = yaml.safe_load(text)
    assert NAME in workflow["name"] and NAME in text.splitlines()[0]
    assert "push" in workflow["on"]
    job = workflow["jobs"]["run-autograding-tests"]
    steps = job["steps"]
    grade = next(step for step in steps if step.get("name") == "minidl grade")
    assert grade["continue-on-error"] is True, "a copy that cannot be graded still gets its report: 0 points"
    assert grade["env"]["MINIDL_REFERENCE"] == "${{ secrets.MINIDL_REFERENCE_EX2_SENTIMENT }}"
    assert 'minidl grade --json .minidl-grade.json --reference "$RUNNER_TEMP/expected.json"' in grade["run"]
    assert "MINIDL_REFERENCE_EX2_SENTIMENT" in text.split("\nname:")[0], "the header says which secret to set"
    install = next(step["run"] for step in steps if step.get("name") == "Install minidl")
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    graders = [step for step in steps if step.get("uses", "").startswith("classroom-resources/autograding-command")]
    assert [step["id"] for step in graders] == [f"task-{n}" for n in POINTS]
    assert {step["id"]: step["with"]["max-score"] for step in graders} == {f"task-{n}": p for n, p in POINTS.items()}
    reporter = steps[-1]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter")
    assert reporter["with"]["runners"] == ",".join(f"task-{n}" for n in POINTS)
    assert reporter["env"] == {f"TASK-{n}_RESULTS": f"${{{{steps.task-{n}.outputs.result}}}}" for n in POINTS}
    report = {"tasks": [{"number": 1, "passed": True, "first_failure": None},
                        {"number": 2, "passed": False, "first_failure": "MatMul.backward: dL/da[0, 1] expected 1"}]}
    assert _check_command(graders[0]["with"]["command"], report, tmp_path) == (0, "passed")
    assert _check_command(graders[1]["with"]["command"], report, tmp_path) == (
        1, "MatMul.backward: dL/da[0, 1] expected 1")


def test_the_time_limit_help_says_that_finished_tasks_keep_their_points():
    from minidl.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for parser in (commands["assignment"]._subparsers._group_actions[0].choices["gradescope"], commands["grade"]):
        text = " ".join(parser.format_help().split())
        assert "finished keep their points" in text and "scores 0" not in text and "'timed out'" not in text, text

"""Assignments as hand-outs: student copies with stubs to write, graded by gradient checks.

    minidl assignment make ex2_sentiment --out handout/   # a self-contained student copy
    minidl grade handout/                                 # a score per task, failures in plain words

    manifest.py         assignments/<name>/manifest.toml: the tasks, their points, targets and tests
    stubs.py            replace a function's body by a stub, on the syntax tree, keeping the rest of the file
    handout.py          the trimmed handout (plus the implementation tasks) and README of a copy
    make.py             build the copy atomically, without anything that would give a solution away
    grade.py            run the grading tests in the copy, score each task (all or nothing), report
    rules.py            the rules read off a target's source: no torch in an op or model method, no np. in an op
    pytest_recorder.py  the pytest plugin that records each test's outcome for grade.py
    checks.py           what grading tests are written with: fixed inputs, plain-words checks
    expected.py         write grading/expected.json (reference values, never handed out) from the reference code
    commands.py         the command-line wiring
"""
from .grade import grade
from .make import make
from .manifest import AssignmentError, find_assignment, load_manifest

__all__ = ["AssignmentError", "find_assignment", "grade", "load_manifest", "make"]

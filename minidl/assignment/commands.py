"""The command line of the assignment tools: ``minidl assignment make|list|expected`` and ``minidl grade``."""
from __future__ import annotations

from ..command import _call, at_least, positive, whole_numbers
from .grade import TEST_SECONDS
from .manifest import default_root, find_assignment, listed_assignments


def add_arguments(subparsers):
    """Add ``minidl assignment`` and ``minidl grade`` to the CLI; each sets ``args.run``."""
    assignment = subparsers.add_parser("assignment", help="make a student copy of an assignment (stubs to write, "
                                                          "a handout, grading tests); list the assignments")
    what = assignment.add_subparsers(dest="what", required=True)
    make = what.add_parser("make", help="write a self-contained student copy of minidl for one assignment",
                           description="Copy minidl, the handout and the grading tests to --out, with the body of "
                                       "every function the student writes replaced by a stub.")
    make.add_argument("name", help="the assignment (minidl assignment list shows them)")
    make.add_argument("--out", required=True, help="the new folder (must not exist, or be empty)")
    make.add_argument("--tasks", type=whole_numbers(1), default=None,
                      help="stub only these tasks, e.g. 1,3 (default: all); to check that tasks are independent")
    make.add_argument("--solution", action="store_true", help="keep the reference bodies (an instructor's copy)")
    make.set_defaults(run=_call("minidl.assignment.make", "main"))
    listing = what.add_parser("list", help="the assignments, their tasks, points and targets")
    listing.set_defaults(run=_list)
    expected = what.add_parser("expected", help="(instructors) rewrite grading/expected.json from the reference code")
    expected.add_argument("name", help="the assignment whose grading/expected.json to rewrite")
    expected.set_defaults(run=_call("minidl.assignment.expected", "main"))
    gradescope = what.add_parser("gradescope", help="(instructors) write the Gradescope autograder (a zip) of an "
                                                    "assignment",
                                 description="Write the zip that a Gradescope programming assignment takes: setup.sh, "
                                             "run_autograder, a student copy (grading tests and checks) and the "
                                             "reference values. Gradescope then shows one test per task.")
    gradescope.add_argument("name", help="the assignment (minidl assignment list shows them)")
    gradescope.add_argument("--out", required=True, help="the zip to write, e.g. autograder.zip")
    gradescope.add_argument("--reference", default=None,
                            help="where the reference values come from, as for minidl grade --reference: a "
                                 "repository, an assignment folder, its grading/ folder or the JSON file (default: "
                                 "this repository's)")
    gradescope.add_argument("--time-limit", type=float, default=480,
                            help="seconds one submission's grading may take; then its tests are stopped: the tasks "
                                 "that finished keep their points, the others score 0")
    gradescope.set_defaults(run=_call("minidl.assignment.gradescope", "main"))
    for parser in (make, listing, expected, gradescope):   # each one's last option
        parser.add_argument("--root", default=None, help="the repository with assignments/ (default: this minidl's)")

    grade = subparsers.add_parser("grade", help="run an assignment's grading tests on a copy; a score per task",
                                  description="Grade the student copy in DIRECTORY (default: the current folder): "
                                              "a task earns its points only when all its checks pass.")
    grade.add_argument("directory", nargs="?", default=".", help="the student copy to grade")
    grade.add_argument("--assignment", default=None,
                       help="grade this assignment in a tree that is not a student copy, e.g. the repository "
                            "(default: the copy's own)")
    grade.add_argument("--task", type=at_least(1), action="append", default=None,
                       help="grade only this task; repeatable (default: all of them)")
    grade.add_argument("--json", default=None, help="also write the report as JSON to this file")
    grade.add_argument("--timeout", type=positive, default=600, help="seconds before the tests are stopped")
    grade.add_argument("--test-timeout", type=positive, default=TEST_SECONDS,
                       help="seconds one test (or the import of one test file) may run; past it, it fails and the tests "
                            "after it run on")
    grade.add_argument("--reference", default=None,
                       help="(instructors) the reference values: a clone of the repository, its assignments/NAME "
                            "folder, its grading/ folder or the expected.json file (default: the repository of "
                            "this minidl)")
    grade.add_argument("--submissions", default=None, metavar="DIR",
                       help="(instructors) grade every subfolder (or .zip) of DIR, one student copy each, several at "
                            "once, and write the grades to --csv")
    grade.add_argument("--csv", default=None,
                       help="with --submissions: the CSV to write (student, total, one column per task, status, "
                            "first_failure)")
    grade.add_argument("--workers", type=int, default=None,
                       help="with --submissions: how many students to grade at once (default: one per CPU)")
    grade.add_argument("--time-limit", type=float, default=600,
                       help="with --submissions: seconds one student's grading may take; then its tests are "
                            "stopped: the tasks that finished keep their points, the others score 0")
    grade.set_defaults(run=_grade)
    return assignment, grade


def _grade(args):
    module = "minidl.assignment.batch" if args.submissions else "minidl.assignment.grade"
    return _call(module, "main")(args)


def _list(args):
    root = args.root or default_root()
    for name in listed_assignments(root):
        manifest = find_assignment(name, root)
        print(f"{name}: {manifest.title} ({manifest.points} points)")
        for task in manifest.tasks:
            print(f"  {task.number}. {task.title} ({task.points} points)")
            for target in task.targets:
                print(f"       {target}")
    return 0

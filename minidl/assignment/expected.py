"""``minidl assignment expected NAME``: write ``grading/expected.json`` from the reference code.

Every grading test file may define functions ``case_<name>()`` that run the code under test on
fixed inputs and return {output name: array or Tensor}. Its tests compare the same call with
``checks.expected(__file__, "<name>")``. This command imports each grading file of the
assignment with the repository's own minidl (the reference), calls every case, and writes all
the values to ``grading/expected.json`` (atomically), so the reference values are produced by
code, never typed in, and can be regenerated after a deliberate change of the reference.
The file stays in the repository: ``make`` leaves it out of every copy, and ``minidl grade``
hands it to the grading run from outside the graded folder (``grade.find_reference``).
"""
from __future__ import annotations

import importlib.util
import json
import sys

from ..io import write_text
from .checks import as_float64
from .manifest import EXPECTED, MARKER, MINIDL_ROOT, AssignmentError, find_assignment


def compute_cases(manifest):
    """{case name: {output name: nested lists}} from every ``case_*`` function of the grading files."""
    cases = {}
    for path in sorted((manifest.folder / "grading").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"minidl_grading_{manifest.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ among the grading files
        try:
            spec.loader.exec_module(module)
        finally:
            sys.dont_write_bytecode = writes
        for name in sorted(vars(module)):
            if name.startswith("case_") and callable(getattr(module, name)):
                case = name.removeprefix("case_")
                if case in cases:
                    raise AssignmentError(f"{path}: case {case!r} is defined in two grading files")
                cases[case] = {key: as_float64(value).tolist() for key, value in getattr(module, name)().items()}
    return cases


def write_expected(name, root=None):
    manifest = find_assignment(name, root)
    if (manifest.root / MARKER).is_file() or MINIDL_ROOT != manifest.root:
        raise AssignmentError(f"reference values come from the reference code: run this with the minidl of "
                              f"{manifest.root} (this is the minidl of {MINIDL_ROOT}), and not in a student copy")
    cases = compute_cases(manifest)
    path = manifest.folder / "grading" / EXPECTED
    lines = (f" {json.dumps(case)}: {json.dumps(values)}" for case, values in cases.items())
    write_text(path, "{\n" + ",\n".join(lines) + "\n}\n")   # one line per case: readable diffs
    return path, cases


def main(args):
    path, cases = write_expected(args.name, args.root)
    print(f"wrote {len(cases)} reference cases to {path}: {', '.join(cases)}")
    return 0

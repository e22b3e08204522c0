"""``minidl assignment make NAME --out DIR``: a self-contained student copy of minidl for one assignment.

The copy holds the whole package (``minidl/``), ``pyproject.toml``, the ``Makefile``, a trimmed
README, and of the assignment only its handout (trimmed, with the implementation tasks added),
its manifest, its grading tests and the files the manifest lists, but not the grading tests'
reference values (``grading/expected.json``): they are the answers of the forward checks, and
``minidl grade`` brings them from the instructor's repository (see ``grade.find_reference``). Every target of every task
(and every ``hide`` body) has its body replaced by a stub that raises ``NotImplementedError``
naming the task. Nothing that would give a solution away is copied: no ``.git``, ``.venv``,
``__pycache__``/``.pyc``, egg-info, ``runs/``, ``results/``, other assignments, or the files the
manifest excludes (e.g. the Triton kernels of the ops the student writes). A file
``assignment.toml`` at the top says which assignment the copy is, for ``minidl grade``.

The copy is built in a temporary folder beside DIR and renamed to DIR at the end, so DIR is
either absent or complete; an existing non-empty DIR is refused, never overwritten.
``solution=True`` makes the same copy with the reference bodies kept (for instructors, and to
check that grading the reference scores full marks).
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..io import _umask, check_writable
from .checks import EXPECTED
from .handout import student_handout, student_readme
from .manifest import ASSIGNMENTS, MANIFEST, AssignmentError, check_files, find_assignment
from .stubs import stub_source

MARKER = "assignment.toml"
PACKAGE_FILES = ("minidl", "pyproject.toml", "Makefile")
# never handed out: version control, environments, caches, build metadata, and anything that
# holds results (ours would answer the written questions)
NEVER = (".git", ".venv", "venv", "__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".pytest_cache",
         ".hypothesis", ".ipynb_checkpoints", "results", "runs", ".DS_Store")


def _leaks(name):
    return any(fnmatch.fnmatch(name, pattern) for pattern in NEVER)


def _copy(source, destination, root, exclude):
    """Copy a file or a folder tree, leaving out NEVER and the ``exclude`` paths (relative to ``root``)."""
    excluded = {(root / path).resolve() for path in exclude}

    def ignore(folder, names):
        return [n for n in names if _leaks(n) or (Path(folder) / n).resolve() in excluded]

    if source.is_dir():
        shutil.copytree(source, destination, ignore=ignore)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def _stub_targets(manifest, tasks, copy_root):
    """Stub every target of ``tasks`` (and their ``hide`` bodies) in the copy, one pass per file."""
    by_file = {}
    for task in tasks:
        for target in task.targets + task.hide:
            by_file.setdefault(target.path, {})[target.qualname] = task.stub_message(manifest.handout, target)
    for path, messages in by_file.items():
        file = copy_root / path
        if not file.is_file():
            raise AssignmentError(f"{manifest.folder / MANIFEST}: target file {path} is excluded from the copy "
                                  f"(copy.exclude) or missing; a stubbed file must be handed out")
        try:
            stubbed = stub_source(file.read_text(encoding="utf-8"), messages, path)
        except AssignmentError as e:
            raise AssignmentError(f"{manifest.folder / MANIFEST}: {e}") from None
        file.write_text(stubbed, encoding="utf-8")


def _check_no_leaks(copy_root):
    found = [str(p.relative_to(copy_root)) for p in copy_root.rglob("*") if _leaks(p.name)]
    found += [str(p.relative_to(copy_root)) for p in (copy_root / ASSIGNMENTS).rglob(EXPECTED)]  # the answers
    if found:  # _copy should have left them out: refuse rather than hand them out
        raise AssignmentError(f"the copy would contain {', '.join(sorted(found)[:5])}; not handing it out")


def _marker(manifest, tasks, solution):
    lines = ["# Written by `minidl assignment make`: which assignment this copy is (`minidl grade` reads it).",
             f"assignment = {json.dumps(manifest.name)}",
             f"manifest = {json.dumps(f'{ASSIGNMENTS}/{manifest.name}/{MANIFEST}')}",
             f"kind = {json.dumps('solution' if solution else 'student')}",
             f"stubbed_tasks = {json.dumps([] if solution else [t.number for t in tasks])}",
             f"made_with = {json.dumps('minidl ' + __version__)}"]
    return "\n".join(lines) + "\n"


def build(manifest, destination, tasks=None, solution=False):
    """Write the copy into ``destination`` (a fresh folder). ``tasks``: stub only these (default: all)."""
    root, tasks = manifest.root, list(tasks or manifest.tasks)
    check_files(manifest)
    for name in PACKAGE_FILES:
        if not (root / name).exists():
            raise AssignmentError(f"{root} has no {name}; run from a clone of the minidl repository")
        _copy(root / name, destination / name, root, manifest.exclude)
    assignment = destination / ASSIGNMENTS / manifest.name
    _copy(manifest.folder / MANIFEST, assignment / MANIFEST, root, ())
    answers = [manifest.folder / "grading" / EXPECTED]  # absolute: root / answers[0] is answers[0]
    for name in dict.fromkeys(("grading", *manifest.copy_files)):
        if not (manifest.folder / name).exists():
            raise AssignmentError(f"{manifest.folder / MANIFEST}: copy.files lists {name}, which does not exist")
        _copy(manifest.folder / name, assignment / name, root, answers)
    handout = (manifest.folder / "README.md").read_text(encoding="utf-8")
    (assignment / "README.md").write_text(student_handout(handout, manifest, manifest.tasks), encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    (destination / "README.md").write_text(student_readme(readme, manifest), encoding="utf-8")
    if not solution:
        _stub_targets(manifest, tasks, destination)
    (destination / MARKER).write_text(_marker(manifest, tasks, solution), encoding="utf-8")
    from .gradescope import write_classroom_workflow  # here: gradescope imports make

    write_classroom_workflow(destination, manifest.name, manifest.root)   # .github/workflows/classroom.yml
    _check_no_leaks(destination)


def make(name, out, root=None, tasks=None, solution=False):
    """Make the copy of assignment ``name`` at ``out`` (atomically); returns the Path of the copy."""
    manifest = find_assignment(name, root)
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AssignmentError(f"{out} already exists and is not an empty folder; choose a new one "
                              f"(nothing was written)")
    for source in (manifest.root / "minidl", manifest.folder):
        if out == source or source in out.parents:
            raise AssignmentError(f"{out} lies inside {source}, which is copied; choose a folder elsewhere")
    selected = [manifest.task(n) for n in tasks] if tasks else None
    check_writable(out, "--out", folder=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        build(manifest, building, selected, solution)
        os.chmod(building, 0o777 & ~_umask())  # mkdtemp makes an owner-only folder
        os.rename(building, out)  # atomic; replaces an empty folder
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return out


def main(args):
    tasks = sorted(set(args.tasks or ()))   # --tasks 1,1 is task 1
    out = make(args.name, args.out, root=args.root, tasks=tasks, solution=args.solution)
    manifest = find_assignment(args.name, args.root)
    if args.solution:
        print(f"wrote the solution copy of {manifest.name} (reference bodies kept) to {out}")
    else:
        stubbed = ", ".join(map(str, tasks)) if tasks else "all"
        print(f"wrote the student copy of {manifest.name} to {out}\n"
              f"  stubbed tasks: {stubbed} of {len(manifest.tasks)}; the handout: {out / manifest.handout}")
    print(f"  grade it with: minidl grade {out}")
    return 0

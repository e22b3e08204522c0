"""``minidl assignment make NAME --out DIR``: a self-contained student copy of minidl for one assignment.

The copy holds the whole package (``minidl/``), ``pyproject.toml``, the ``Makefile`` (less the targets
that need what a copy lacks; ``make test`` runs ``minidl grade``), a trimmed README, and of the
assignment only its handout (trimmed, with the implementation tasks added), its manifest, its grading
tests and the files the manifest lists, but not the grading tests'
reference values (``grading/expected.json``): they are the answers of the forward checks, and
``minidl grade`` brings them from the instructor's repository (see ``grade.find_reference``). Every target of every task
(and every ``hide`` body) has its body replaced by a stub that raises ``NotImplementedError``
naming the task. Nothing that would give a solution away is copied: no ``.git``, ``.venv``,
``__pycache__``/``.pyc``, egg-info, ``runs/``, ``results/``, other assignments, or the files the
manifest excludes (e.g. the Triton kernels of the ops the student writes). The package holds the
code of every assignment, so the targets, ``hide`` bodies and excluded files of every *later* one
(a higher ``exercise`` number, or none given) are stubbed or left out too: a student of exercise 2
does not receive exercise 3's solutions. Earlier exercises' bodies stay (later code builds on
them). A file ``assignment.toml`` at the top says which assignment the copy is, for ``minidl grade``.

The copy is built in a temporary folder beside DIR and renamed to DIR at the end, so DIR is
either absent or complete; an existing non-empty DIR is refused, never overwritten.
``solution=True`` makes the same copy with this assignment's reference bodies kept (for instructors,
and to check that grading the reference scores full marks); later assignments' stay stubbed.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..io import _umask, check_writable
from ..version import __version__
from .handout import student_handout, student_readme
from .manifest import (ASSIGNMENTS, EXPECTED, MANIFEST, MARKER, AssignmentError, check_files, find_assignment,
                       known_assignments, load_manifest)
from .stubs import stub_source

PACKAGE_FILES = ("minidl", "minidl_script.py", "pyproject.toml", "Makefile")
# never handed out: version control, environments, caches, build metadata, and anything that
# holds results (ours would answer the written questions)
NEVER = (".git", ".venv", "venv", "__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".pytest_cache",
         ".hypothesis", ".ipynb_checkpoints", "results", "runs", ".DS_Store")
# Makefile targets that need what a copy lacks: theory/, the course's tests/ (browser installs chromium for one of
# them) and every Triton kernel (exercise 2's copy leaves two out, and compile-check imports them all)
NOT_IN_A_COPY = ("browser", "theory", "compile-check")
GRADE_RULE = ("# in a student copy the course's tests/ are not there: `make test` grades this assignment\n"
              "test: $(STAMP)\n\t$(BIN)/minidl grade")


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


def student_makefile(text):
    """The repository's Makefile less the NOT_IN_A_COPY targets, with ``make test`` running ``minidl grade``: in a
    copy ``make theory`` said "No module named 'theory'", and ``make test`` found no tests/ and ran the grading
    tests without their reference values (``minidl grade`` brings them, or says which checks need them)."""
    blocks = []
    for block in text.split("\n\n"):   # a rule is a block: its comment lines, its target line and its recipe
        target = re.search(r"^([\w-]+):", block, re.M)
        name = target and target.group(1)
        if name not in NOT_IN_A_COPY:
            blocks.append(GRADE_RULE if name == "test" else block)
    return re.sub(r"^\.PHONY:.*$", lambda m: " ".join(w for w in m.group().split() if w not in NOT_IN_A_COPY),
                  "\n\n".join(blocks), flags=re.M)


def later_assignments(manifest):
    """The other assignments beside ``manifest`` that do not come before it in the course (a higher
    ``exercise`` number, or a number missing on either side): their solutions are not handed out with it."""
    others = (load_manifest(manifest.root / ASSIGNMENTS / name, manifest.root)
              for name in known_assignments(manifest.root) if name != manifest.name)
    return [m for m in others if manifest.exercise is None or m.exercise is None or m.exercise > manifest.exercise]


def _stub_targets(stubbed, copy_root):
    """Stub every target (and ``hide`` body) of the ``(manifest, tasks)`` pairs in the copy, one pass per file;
    the first pair's tasks are the student's, the others' belong to later assignments."""
    by_file, where = {}, {}
    for manifest, tasks in stubbed:
        for task in tasks:
            for target in task.targets + task.hide:
                message = (task.stub_message(manifest.handout, target) if manifest is stubbed[0][0] else
                           f"not handed out: {target.qualname} is task {task.number} of {manifest.name}, "
                           f"which comes later in the course")
                by_file.setdefault(target.path, {}).setdefault(target.qualname, message)
                where.setdefault(target.path, manifest.folder / MANIFEST)
    for path, messages in by_file.items():
        file = copy_root / path
        if not file.is_file():
            raise AssignmentError(f"{where[path]}: target file {path} is excluded from the copy "
                                  f"(copy.exclude) or missing; a stubbed file must be handed out")
        try:
            source = stub_source(file.read_text(encoding="utf-8"), messages, path)
        except AssignmentError as e:
            raise AssignmentError(f"{where[path]}: {e}") from None
        except SyntaxError as e:   # the tree copied is the running minidl's: a student's, graded with --reference,
            if (stubbed[0][0].root / MARKER).is_file():   # whose minidl/ then replaces this one: its checks say it
                continue
            raise AssignmentError(f"{path} does not parse: {e.msg} (line {e.lineno}); fix it, then run again") from None
        file.write_text(source, encoding="utf-8")


def _named_files(text, root):
    """The repository files that ``text`` links to (``](docs/x.png)``) or names in code (`` `python docs/x.py` ``),
    leaving out the package (copied already, less what the manifests exclude), the assignments, tests and
    anything that is never handed out."""
    named = re.findall(r"(?:\]\(|`(?:python )?)((?:[\w-]+/)+[\w.-]+\.\w+)", text)
    return sorted({path for path in named if (root / path).is_file() and not any(map(_leaks, path.split("/")))
                   and path.split("/")[0] not in ("minidl", ASSIGNMENTS, "tests")})


def _check_no_leaks(copy_root):
    found = [str(p.relative_to(copy_root)) for p in copy_root.rglob("*") if _leaks(p.name)]
    found += [str(p.relative_to(copy_root)) for p in (copy_root / ASSIGNMENTS).rglob(EXPECTED)]  # the answers
    if found:  # _copy should have left them out: refuse rather than hand them out
        raise AssignmentError(f"the copy would contain {', '.join(sorted(found)[:5])}; not handing it out")


def _marker(manifest, tasks, solution, later):
    lines = ["# Written by `minidl assignment make`: which assignment this copy is (`minidl grade` reads it).",
             f"assignment = {json.dumps(manifest.name)}",
             f"manifest = {json.dumps(f'{ASSIGNMENTS}/{manifest.name}/{MANIFEST}')}",
             f"kind = {json.dumps('solution' if solution else 'student')}",
             f"stubbed_tasks = {json.dumps([] if solution else [t.number for t in tasks])}",
             f"withheld = {json.dumps([m.name for m in later])}   # later assignments: their tasks are stubs here",
             f"made_with = {json.dumps('minidl ' + __version__)}"]
    return "\n".join(lines) + "\n"


def build(manifest, destination, tasks=None, solution=False):
    """Write the copy into ``destination`` (a fresh folder). ``tasks``: stub only these (default: all)."""
    root, tasks, later = manifest.root, list(tasks or manifest.tasks), later_assignments(manifest)
    check_files(manifest)
    for name in PACKAGE_FILES:
        if not (root / name).exists():
            raise AssignmentError(f"{root} has no {name}; run from a clone of the minidl repository")
        _copy(root / name, destination / name, root, manifest.exclude + tuple(p for m in later for p in m.exclude))
    makefile = destination / "Makefile"
    makefile.write_text(student_makefile(makefile.read_text(encoding="utf-8")), encoding="utf-8")
    assignment = destination / ASSIGNMENTS / manifest.name
    _copy(manifest.folder / MANIFEST, assignment / MANIFEST, root, ())
    answers = [manifest.folder / "grading" / EXPECTED]  # absolute: root / answers[0] is answers[0]
    for name in dict.fromkeys(("grading", *manifest.copy_files)):
        if not (manifest.folder / name).exists():
            raise AssignmentError(f"{manifest.folder / MANIFEST}: copy.files lists {name}, which does not exist")
        _copy(manifest.folder / name, assignment / name, root, answers)
    handout = (manifest.folder / "README.md").read_text(encoding="utf-8")
    (assignment / "README.md").write_text(student_handout(handout, manifest, manifest.tasks), encoding="utf-8")
    readme = student_readme((root / "README.md").read_text(encoding="utf-8"), manifest)
    (destination / "README.md").write_text(readme, encoding="utf-8")
    for path in _named_files(readme, root):   # its picture and the script that draws it: they were missing
        _copy(root / path, destination / path, root, ())
    _stub_targets([(manifest, [] if solution else tasks)] + [(m, m.tasks) for m in later], destination)
    (destination / MARKER).write_text(_marker(manifest, tasks, solution, later), encoding="utf-8")
    from .gradescope import write_classroom_workflow  # here: gradescope imports make

    write_classroom_workflow(destination, manifest.name, manifest.root)   # .github/workflows/classroom.yml
    _check_no_leaks(destination)


def make(name, out, root=None, tasks=None, solution=False):
    """Make the copy of assignment ``name`` at ``out`` (atomically); returns the Path of the copy."""
    manifest = find_assignment(name, root)
    if solution and tasks:   # --tasks was ignored
        raise AssignmentError("--solution keeps every task's reference body and --tasks chooses the tasks to stub; "
                              "give one of them")
    if solution and (manifest.root / MARKER).is_file():   # its "solution copy" was full of stubs
        raise AssignmentError(f"--solution keeps the reference bodies, and {manifest.root} is a student copy (its "
                              f"bodies are stubs); give the repository as --root")
    out = Path(out).resolve()
    check_writable(out, "--out", folder=True)   # first: a file was called "not an empty folder"
    if out.is_dir() and any(out.iterdir()):
        raise AssignmentError(f"{out} already exists and is not an empty folder; choose a new one "
                              f"(nothing was written)")
    for source in (manifest.root / "minidl", manifest.folder):
        if out == source or source in out.parents:
            raise AssignmentError(f"{out} lies inside {source}, which is copied; choose a folder elsewhere")
    selected = [manifest.task(n) for n in tasks] if tasks else None
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
    tasks = sorted(args.tasks or ())   # (--tasks refuses a task given twice)
    out = make(args.name, args.out, root=args.root, tasks=tasks, solution=args.solution)
    manifest = find_assignment(args.name, args.root)
    if args.solution:
        print(f"wrote the solution copy of {manifest.name} (reference bodies kept) to {out}")
    else:
        stubbed = ", ".join(map(str, tasks)) if tasks else "all"
        print(f"wrote the student copy of {manifest.name} to {out}\n"
              f"  stubbed tasks: {stubbed} of {len(manifest.tasks)}; the handout: {out / manifest.handout}")
    later = later_assignments(manifest)
    if later:
        print("  also stubbed, as later in the course: every task of "
              + ", ".join(m.name + (f" (exercise {m.exercise})" if m.exercise else "") for m in later))
    print(f"  grade it with: minidl grade {out}")
    return 0

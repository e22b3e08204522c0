"""An assignment's manifest: what a student writes, what each task is worth, which tests grade it.

Each assignment folder holds a ``manifest.toml``::

    name = "ex2_sentiment"
    title = "Exercise 2: ..."
    exercise = 2      # the course's order: a copy stubs the tasks of every later exercise (and of unnumbered ones)

    [handout]
    drop_sections = ["Our results", "Discussion"]   # the handout's "## " sections a student must not see
    insert_before = "Tasks"                          # where the list of implementation tasks goes

    [copy]
    files = ["README.md", "run_all.sh"]              # what else of the assignment folder to hand out
    exclude = ["minidl/kernels/recurrent.py"]        # package files that would give a solution away
    readme_sections = ["A first look", "Layout"]     # the sections of the top-level README to keep

    [[task]]
    title = "Sigmoid and tanh: the backward passes"
    points = 10
    targets = ["minidl/autograd/ops/activations.py::Sigmoid.backward", ...]
    what = "one line the stub's error message repeats"
    description = "the paragraph of the handout"
    tests = ["grading/test_activations.py"]          # files, or file::test_name, in the assignment folder
    hide = []                                        # more bodies to stub that are not the student's job
    may_not_call = ["Linear.backward"]               # same-file code the copy keeps that computes the answer

Tasks are numbered 1, 2, ... in the order they appear. A target is ``path::Name`` or
``path::Class.method`` (the path relative to the repository root). Scoring is all or nothing
per task: a task earns its points only when every one of its tests passes (see ``grade``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MinidlError

try:
    import tomllib
except ImportError:  # Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

MANIFEST = "manifest.toml"
MARKER = "assignment.toml"   # at the top of a student copy: which assignment it is
EXPECTED = "expected.json"   # grading/EXPECTED: the reference values of the checks
REFERENCE = "MINIDL_GRADE_REFERENCE"   # set by minidl grade: the reference values' file, or "" for none
GRADE_ROOT = "MINIDL_GRADE_ROOT"   # set by minidl grade: the folder it grades
ASSIGNMENTS = "assignments"
MINIDL_ROOT = Path(__file__).resolve().parents[2]   # the tree of the running minidl (the instructor's repository)


class AssignmentError(MinidlError):
    """A manifest, an assignment name or a folder that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """One function or method body: ``path::Class.method``."""

    path: str       # relative to the repository root, with forward slashes
    qualname: str   # "Class.method" or "function"

    @classmethod
    def parse(cls, text, where):
        path, sep, qualname = text.partition("::")
        if not sep or not path.endswith(".py") or not qualname or not all(p.isidentifier() for p in qualname.split(".")):
            raise AssignmentError(f"{where}: target {text!r} is not of the form 'path/to/file.py::Class.method' "
                                  f"or 'path/to/file.py::function'")
        return cls(path, qualname)

    def __str__(self):
        return f"{self.path}::{self.qualname}"


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    points: int
    targets: tuple
    tests: tuple          # "grading/test_x.py" or "grading/test_x.py::test_name", relative to the assignment folder
    what: str = ""
    description: str = ""
    hide: tuple = ()      # bodies stubbed in the student copy but not graded (e.g. a GPU kernel of the same op)
    may_not_call: tuple = ()  # same-file functions the copy keeps (other code uses them) that compute the answer

    def stub_message(self, handout, target):
        return (f"implement this ({target.qualname}): see implementation task {self.number} of the handout "
                f"({handout}): {self.what or self.title}")


@dataclass(frozen=True)
class Manifest:
    name: str
    title: str
    folder: Path          # the assignment folder
    root: Path            # the repository (or student copy) root that holds assignments/ and minidl/
    tasks: tuple
    exercise: int | None = None   # the place in the course; later exercises' solutions are not handed out
    copy_files: tuple = ("README.md",)
    exclude: tuple = ()
    readme_sections: tuple = ()
    drop_sections: tuple = ()
    insert_before: str = ""

    @property
    def handout(self):
        """The handout's path relative to the root, as the stub messages and the README name it."""
        return f"{ASSIGNMENTS}/{self.name}/README.md"

    @property
    def points(self):
        return sum(t.points for t in self.tasks)

    def task(self, number):
        for t in self.tasks:
            if t.number == number:
                return t
        raise AssignmentError(f"{self.name} has no task {number}; its tasks are "
                              + ", ".join(f"{t.number} ({t.title})" for t in self.tasks))

    def test_files(self, tasks=None):
        """The grading test files (relative to the assignment folder) of ``tasks`` (default: all)."""
        return sorted({spec.partition("::")[0] for t in (tasks or self.tasks) for spec in t.tests})


def _strings(value, where, key):
    if value is None:
        return ()
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise AssignmentError(f"{where}: {key} must be a list of strings, got {value!r}")
    return tuple(value)


def read_toml(path):
    if tomllib is None:
        raise AssignmentError("reading an assignment manifest needs Python >= 3.11 (tomllib) or, on Python 3.10, "
                              "the tomli package: pip install tomli")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise AssignmentError(f"{path}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:   # TOML is UTF-8; an editor saved it in another encoding
        raise AssignmentError(f"{path}: not UTF-8 (byte {e.object[e.start]:#04x} at {e.start}); TOML files are UTF-8: "
                              f"save it as UTF-8") from None


def load_manifest(folder, root=None):
    """Read and check ``folder/manifest.toml``; ``root`` (default: two levels up) holds minidl/."""
    folder = Path(folder).resolve()
    path = folder / MANIFEST
    if not path.is_file():
        raise AssignmentError(f"{folder} has no {MANIFEST}: not an assignment folder")
    data = read_toml(path)
    root = Path(root).resolve() if root is not None else folder.parent.parent
    name = data.get("name", folder.name)
    if name != folder.name:
        raise AssignmentError(f"{path}: name = {name!r} but the folder is {folder.name!r}; they must agree")
    raw_tasks = data.get("task", [])
    if not raw_tasks:
        raise AssignmentError(f"{path}: no [[task]] tables: an assignment needs at least one task")
    tasks = []
    for number, raw in enumerate(raw_tasks, start=1):
        where = f"{path}, task {number}"
        unknown = set(raw) - {"title", "points", "targets", "tests", "what", "description", "hide",
                                "may_not_call"}
        if unknown:
            raise AssignmentError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("title", "points", "targets", "tests"):
            if key not in raw:
                raise AssignmentError(f"{where}: missing {key!r}")
        if not isinstance(raw["points"], int) or raw["points"] <= 0:
            raise AssignmentError(f"{where}: points must be a positive integer, got {raw['points']!r}")
        targets = tuple(Target.parse(t, where) for t in _strings(raw["targets"], where, "targets"))
        tests = _strings(raw["tests"], where, "tests")
        if not targets or not tests:
            raise AssignmentError(f"{where}: a task needs at least one target and one test")
        hide = tuple(Target.parse(t, where) for t in _strings(raw.get("hide"), where, "hide"))
        tasks.append(Task(number, raw["title"], raw["points"], targets, tests, raw.get("what", ""),
                          raw.get("description", ""), hide, _strings(raw.get("may_not_call"), where, "may_not_call")))
    copy, handout, exercise = data.get("copy", {}), data.get("handout", {}), data.get("exercise")
    if exercise is not None and (not isinstance(exercise, int) or isinstance(exercise, bool) or exercise <= 0):
        raise AssignmentError(f"{path}: exercise must be a positive integer (the place in the course), "
                              f"got {exercise!r}")
    return Manifest(name=name, title=data.get("title", name), folder=folder, root=root, tasks=tuple(tasks),
                    exercise=exercise,
                    copy_files=_strings(copy.get("files", ["README.md"]), path, "copy.files"),
                    exclude=_strings(copy.get("exclude"), path, "copy.exclude"),
                    readme_sections=_strings(copy.get("readme_sections"), path, "copy.readme_sections"),
                    drop_sections=_strings(handout.get("drop_sections"), path, "handout.drop_sections"),
                    insert_before=handout.get("insert_before", ""))


def check_files(manifest):
    """Every target file, test file and listed file exists; raises AssignmentError naming the first that does not."""
    for task in manifest.tasks:
        for target in task.targets + task.hide:
            if not (manifest.root / target.path).is_file():
                raise AssignmentError(f"{manifest.folder / MANIFEST}, task {task.number}: target {target} names "
                                      f"a file that does not exist under {manifest.root}")
        for spec in task.tests:
            if not (manifest.folder / spec.partition("::")[0]).is_file():
                raise AssignmentError(f"{manifest.folder / MANIFEST}, task {task.number}: test {spec!r} names a file "
                                      f"that does not exist in {manifest.folder}")


def default_root():
    """The repository that holds the running minidl package, if it has an assignments/ folder; else the
    current directory."""
    return MINIDL_ROOT if (MINIDL_ROOT / ASSIGNMENTS).is_dir() else Path.cwd()


def known_assignments(root):
    folder = Path(root) / ASSIGNMENTS
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / MANIFEST).is_file())


def listed_assignments(root):
    """``known_assignments(root)``, or an AssignmentError saying where none were found."""
    known = known_assignments(root)
    if not known:
        raise AssignmentError(f"no assignments found: {Path(root) / ASSIGNMENTS} has no folder with a {MANIFEST}; "
                              f"run from a clone of the minidl repository, or give --root the folder that holds "
                              f"{ASSIGNMENTS}/")
    return known


def find_assignment(name, root=None):
    """The manifest of assignment ``name`` under ``root``/assignments (``root``: see ``default_root``)."""
    root = Path(root) if root is not None else default_root()
    known = listed_assignments(root)
    if name not in known:
        raise AssignmentError(f"unknown assignment {name!r}; known assignments: {', '.join(known)}")
    return load_manifest(root / ASSIGNMENTS / name, root)

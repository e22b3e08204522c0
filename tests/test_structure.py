"""The shape of the code: one training loop, and no function too tangled to read."""
import ast
import pathlib

import pytest

import minidl

PACKAGE = pathlib.Path(minidl.__file__).parent


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8")


def test_only_the_training_core_steps_an_optimizer():
    """Every model learns through ``train.loop.train``: outside it (and the benchmarks, which
    time bare steps against PyTorch's) no code calls an optimizer's step() or zero_grad()."""
    offenders = []
    for name, source in _sources():
        if name == "train/loop.py" or name.startswith("bench/"):
            continue
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("step", "zero_grad") and "opt" in ast.unparse(node.func.value).lower()):
                offenders.append(f"minidl/{name}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, "a training loop outside the core:\n" + "\n".join(offenders)


def test_every_parse_of_python_source_takes_the_one_lock():
    """CPython 3.11's tree builder counts its recursion depth per interpreter, so two threads in
    ``ast.parse`` at once can fail with SystemError (gh-106905; the mutation tests grade on two
    threads): minidl parses Python only through ``pysyntax.parse``, which holds a lock."""
    offenders = [f"minidl/{name}:{node.lineno} {ast.unparse(node)}" for name, source in _sources()
                 if name != "pysyntax.py" for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Call) and ast.unparse(node.func) in ("ast.parse", "compile")]
    assert not offenders, "Python parsed outside minidl.pysyntax.parse:\n" + "\n".join(offenders)


def test_no_function_is_graded_d_or_worse():
    """radon's cyclomatic complexity: A-C (up to 20 paths) reads; D and worse get split."""
    complexity = pytest.importorskip("radon.complexity", reason="radon is a dev dependency: pip install -e .[dev]")
    tangled = [f"minidl/{name}:{block.lineno} {block.fullname} {complexity.cc_rank(block.complexity)} "
               f"({block.complexity})"
               for name, source in _sources() for block in complexity.cc_visit(source)
               if complexity.cc_rank(block.complexity) not in "ABC"]
    assert not tangled, "functions graded D or worse by radon cc:\n" + "\n".join(tangled)


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name, path, modules):
    """The minidl modules that ``name`` imports at its top level (imports inside functions run
    later, on use, and cannot take part in a cycle at import time)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            base = (".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                    if node.level else node.module or "")
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.add(target)
                break
    return found


def test_no_import_cycles():
    """Layers point one way: no chain of top-level imports leads a module back to itself."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges = {name: _imports(name, path, modules) for name, path in modules.items()}
    state, cycles = {}, []

    def visit(name, chain):
        state[name] = "open"
        for other in sorted(edges[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(chain[chain.index(other):] + [other]))
            elif other not in state:
                visit(other, chain + [other])
        state[name] = "done"

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_import_minidl_loads_the_engine_only():
    """``import minidl`` gives the engine, nn and optim; compress, data, models, train, mlm and
    the rest load when first used (md.train, import minidl.train)."""
    import subprocess
    import sys

    code = ("import sys, minidl as md; print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('minidl.')}));"
            "md.compress.distill; print('minidl.compress.distill' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    loaded = set(ast.literal_eval(out[0]))
    assert loaded.isdisjoint({"compress", "data", "models", "train", "mlm", "experiments", "bench", "web"}), loaded
    assert {"autograd", "nn", "optim", "backend"} <= loaded and out[1] == "True"

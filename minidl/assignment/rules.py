"""Rules of a task that its tests cannot see, checked on the source of its targets.

A backward computed by ``torch.autograd.grad`` over a forward of torch ops gives the right
numbers, and so does ``np.exp`` on the NumPy backend; the tests see correct values either way.
The handouts forbid both: the exercise is the hand-written gradient, and an op must go
through the backend namespace ``ctx.xp`` so that it runs on NumPy arrays and on torch tensors
(on a GPU too). ``grade`` therefore reads each target's source and fails its task, with the
rule in the message, when

* an op (a ``forward``/``backward`` taking ``ctx``), a function taking ``xp``, or a method (a
  model's ``forward``, ``masked_lm_logits``) names torch (``torch.autograd``, ``torch.sigmoid``,
  an import of torch), in its own body or in a function of the same file that it calls;
* an op or a function taking ``xp`` calls NumPy (``np.asarray(...)``, ``numpy.where(...)``) in
  its own body. NumPy constants (``np.pi``) and module-level NumPy for helpers stay allowed.

* a target calls, directly or through same-file functions, a function its task's ``may_not_call``
  names: code the copy keeps that computes the task's answer (``Linear.backward`` stays in ex2's
  copy and, for a 2-D b, computes the gradients ``MatMul.backward`` is asked for).

Other targets may use both (fill-mask's ``_most_probable`` is meant to call ``torch.topk``).
The rules read the graded copy's files, so grading from the instructor's repository applies
them whatever the copy's own grading code says.
"""
from __future__ import annotations

import ast
from pathlib import Path

from ..pysyntax import parse
from .stubs import defined_functions

TORCH, NUMPY = "torch", "numpy"


def _aliases(tree, module):
    """The names ``module`` is bound to at the top of a file: {"np"} for ``import numpy as np``."""
    names = {module, "np"} if module == NUMPY else {module}
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name.split(".")[0] == module}
    return names


def _root(node):
    """The name an attribute chain starts from: "torch" for torch.autograd.grad."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _imports(node, module):
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == module for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == module
    if isinstance(node, ast.Call) and isinstance(node.args[0] if node.args else None, ast.Constant):
        name = _dotted(node.func)
        return (name in ("__import__", "importlib.import_module")
                and str(node.args[0].value).split(".")[0] == module)
    return False


def torch_uses(function, torch_names):
    """[(line, what)]: every place ``function``'s body names torch or imports it."""
    found = []
    for node in ast.walk(function):
        if _imports(node, TORCH):
            found.append((node.lineno, "import torch"))
        elif isinstance(node, (ast.Attribute, ast.Name)) and _root(node) in torch_names:
            found.append((node.lineno, _dotted(node)))
    outer = {}
    for line, what in found:  # keep the longest chain per line: torch.autograd.grad, not torch.autograd
        if len(what) > len(outer.get(line, "")):
            outer[line] = what
    return sorted(outer.items())


def numpy_calls(function, numpy_names):
    """[(line, "np.asarray")]: the calls into NumPy in ``function``'s body. A name the body binds to the
    backend (``np = ctx.xp``, ``np = xp``) is the backend there, not NumPy."""
    backend = {target.id for node in ast.walk(function) if isinstance(node, ast.Assign)
               and _dotted(node.value) in ("ctx.xp", "xp") for target in node.targets if isinstance(target, ast.Name)}
    return sorted({(node.lineno, _dotted(node.func)) for node in ast.walk(function)
                   if isinstance(node, ast.Call) and _root(node.func) in numpy_names - backend})


def _kind(qualname, function):
    """"op" (ctx or xp: array code for every backend), "model" (a method: minidl operations), or None."""
    args = function.args
    parameters = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    if parameters[:1] == ["ctx"] or "xp" in parameters:
        return "op"
    return "model" if "." in qualname else None


def _called_helpers(function, functions):
    """The module-level functions ``function`` calls by name, and those they call, transitively."""
    seen, stack = {}, [function]
    while stack:
        for node in ast.walk(stack.pop()):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions \
                    and node.func.id not in seen:
                seen[node.func.id] = functions[node.func.id]
                stack.append(functions[node.func.id])
    return seen


def _callees(function, functions):
    """The same-file functions ``function`` calls: ``helper(...)`` by name, ``Class.method(...)`` by its dotted name."""
    called = {_dotted(node.func) for node in ast.walk(function) if isinstance(node, ast.Call)}
    return {name for name in called if name in functions and functions[name] is not function}


def _forbidden_call(qualname, functions, may_not_call):
    """A message if ``qualname`` calls a function ``may_not_call`` names, itself or through the same-file
    functions it calls."""
    seen, stack = {qualname}, [qualname]
    while stack:
        caller = stack.pop()
        for name in sorted(_callees(functions[caller], functions)):
            if name in may_not_call:
                via = "" if caller == qualname else f" (through {caller})"
                return (f"{qualname} calls {name}{via}, which computes this task's answer for other code in the "
                        f"copy: write the computation in {qualname} itself")
            if name not in seen:
                seen.add(name)
                stack.append(name)
    return None


def _torch_message(qualname, uses, helper=None):
    """The rule in words, about the most telling use: torch's autograd if it is there, else the first use
    that is not an import."""
    line, what = min(uses, key=lambda use: ("autograd" not in use[1], use[1] == "import torch", use[0]))
    where = f"line {line}{f', in {helper}, which it calls' if helper else ''}"
    if "autograd" in what:
        return (f"{qualname} uses torch.autograd ({what}, {where}): write the backward by hand with ctx.xp; "
                f"torch's autograd is off while grading")
    verb = "imports torch" if what == "import torch" else f"uses {what}"
    return (f"{qualname} {verb} ({where}): write it with ctx.xp, the backend's namespace, not torch, so that it runs "
            f"on NumPy arrays and on torch tensors alike")


def source_findings(source, qualname, filename="<source>", may_not_call=()):
    """One message per rule ``qualname``'s source breaks (see the module docstring); [] when it keeps them.
    ``may_not_call``: the task's same-file functions that hold its answer."""
    try:
        tree = parse(source, filename)
    except SyntaxError:
        return []  # the tests report the syntax error, with its line
    functions = defined_functions(tree)
    if qualname not in functions:
        return [f"{qualname} is no longer defined in {filename}: keep the names and signatures the copy gave you"]
    function = functions[qualname]
    forbidden = _forbidden_call(qualname, functions, may_not_call) if may_not_call else None
    findings = [forbidden] if forbidden else []
    kind = _kind(qualname, function)
    if kind is None:
        return findings
    torch_names = _aliases(tree, TORCH)
    for helper, body in [(None, function), *_called_helpers(function, functions).items()]:
        if uses := torch_uses(body, torch_names):   # the target's own body first, then the helpers it calls
            findings.append(_torch_message(qualname, uses, helper))
            break
    calls = numpy_calls(function, _aliases(tree, NUMPY)) if kind == "op" else []
    if calls:
        line, what = calls[0]
        findings.append(f"{qualname} calls {what} (line {line}): use ctx.xp (the backend's namespace), not np: "
                        f"np fails on torch tensors on a GPU")
    return findings


def task_findings(root, task):
    """[(target, message)] for every rule a task's targets break in the tree at ``root``."""
    found = []
    for target in task.targets:
        path = Path(root) / target.path
        if not path.is_file():
            found.append((target, f"{target.path} is missing: the copy's files must stay where they are"))
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:   # the grader's own exception ended the grading, naming no file
            found.append((target, f"{target.path} is not UTF-8 text (byte {e.object[e.start]:#04x} at position "
                                  f"{e.start}): save it as UTF-8"))
            continue
        found += [(target, message) for message in source_findings(source, target.qualname, target.path,
                                                                   task.may_not_call)]
    return found

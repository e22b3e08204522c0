"""Replace function bodies by stubs, on the syntax tree, keeping everything else of the file as it was.

    new_source = stub_source(source, {"Sigmoid.backward": "implement this: ..."})

``ast`` finds each function (``name``, or ``Class.method``, at any depth of classes) and
tells which lines its body spans; those lines, and the comments just around them, are
replaced by ``raise NotImplementedError(message)`` at the body's indentation. The signature,
the decorators and the docstring stay. Splicing lines instead of writing the tree back with
``ast.unparse`` keeps every other line of the module (formatting, comments) untouched, and
the repository's source needs no ``# BEGIN SOLUTION`` markers: the manifest names what to cut.
"""
from __future__ import annotations

import ast
import textwrap

from ..pysyntax import parse
from .manifest import AssignmentError

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def defined_functions(tree):
    """{"Class.method" or "function": node} for every function and method of a module, nested classes included."""
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, _FUNCTIONS):
                found[f"{prefix}{child.name}"] = child

    visit(tree, "")
    return found


def _is_comment(line):
    return line.strip().startswith("#")


def _body_lines(lines, node):
    """(first, last): the 0-based line range to replace: the body after the docstring, plus the comment
    lines right before it and the indented comment lines right after it."""
    body = node.body
    keep = body[:1] if ast.get_docstring(node, clean=False) is not None else []
    rest = body[len(keep):]
    if not rest:  # a docstring-only function: add the stub after the docstring
        return keep[0].end_lineno, keep[0].end_lineno - 1
    if rest[0].lineno == node.lineno:
        raise AssignmentError(f"{node.name}: its body is on the same line as its 'def'; put it on its own lines")
    first = rest[0].lineno - 1
    floor = keep[0].end_lineno if keep else node.lineno
    while first - 1 >= floor and _is_comment(lines[first - 1]):
        first -= 1  # comment lines right before the first statement explain the body: they go too
    last = rest[-1].end_lineno - 1
    indent = rest[0].col_offset
    while last + 1 < len(lines) and _is_comment(lines[last + 1]) \
            and len(lines[last + 1]) - len(lines[last + 1].lstrip()) >= indent:
        last += 1
    return first, last


def stub_source(source, messages, filename="<source>"):
    """``source`` with the body of each function named in ``messages`` ({qualname: message}) replaced by
    ``raise NotImplementedError(message)``. Raises AssignmentError for a name the module does not define."""
    stubs = {name: f"raise NotImplementedError({message!r})" for name, message in messages.items()}
    return replace_bodies(source, stubs, filename)


def replace_bodies(source, bodies, filename="<source>"):
    """``source`` with the body of each function named in ``bodies`` ({qualname: code}) replaced by ``code``
    (Python lines, dedented, then given the body's indentation). The docstring stays. The mutation tests
    write wrong solutions in place of the reference with it."""
    tree = parse(source, filename)
    functions = defined_functions(tree)
    missing = [name for name in bodies if name not in functions]
    if missing:
        raise AssignmentError(f"{filename} defines no function or method {', '.join(missing)}; it defines: "
                              + ", ".join(functions))
    lines = source.splitlines(keepends=True)
    spans = []
    for name, code in bodies.items():
        node = functions[name]
        first, last = _body_lines(lines, node)
        indent = " " * (node.body[-1].col_offset if node.body else node.col_offset + 4)
        code = textwrap.dedent(code).strip("\n").splitlines()
        text = "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in code)
        spans.append((first, last, text, name))
    spans.sort()
    for (_, last_a, _, a), (first_b, _, _, b) in zip(spans, spans[1:]):
        if first_b <= last_a:
            raise AssignmentError(f"{filename}: {b} lies inside {a}; stub one or the other")
    for first, last, text, _ in reversed(spans):  # bottom up, so the earlier line numbers stay valid
        lines[first:last + 1] = [text]
    result = "".join(lines)
    parse(result, filename)  # a stubbed module must still be valid Python
    return result

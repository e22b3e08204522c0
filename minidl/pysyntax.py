"""Python source to a syntax tree, one thread at a time.

    tree = parse(source, filename)            # = ast.parse(source, filename), safe from any thread

CPython 3.11 keeps the recursion depth of its tree builder (the C code that turns the parser's
tree into ``ast`` objects) in one counter per interpreter, not per thread. Two threads parsing
at once can interleave on that counter, and one of them then fails with ``SystemError: AST
constructor recursion depth mismatch`` (python/cpython gh-106905): the grader's rule checks
raised it when the mutation tests graded two copies on two threads. Every ``ast.parse`` in
minidl goes through here and holds one lock while Python builds the tree.
"""
from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source, filename="<unknown>", mode="exec"):
    """``ast.parse(source, filename, mode)`` with no other thread of this process parsing at the same time."""
    with _LOCK:
        return ast.parse(source, filename, mode)

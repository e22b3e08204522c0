"""The Graph view's little language: a few lines of arithmetic on small tensors, run as minidl ops.

    x = [1, -2, 3]                  a variable: a number or a (nested, rectangular) list of numbers;
    w = [[0.5], [-1], [2]]          it requires grad, so the backward pass reaches it
    h = tanh(x) * x                 a name for an intermediate result: the graph shows it
    sum(h @ w)                      the last line is the output (or the name the last line assigns)

Lines may also be separated by ";". The grammar::

    program    := statement (newline | ";") statement ...
    statement  := NAME "=" expr | expr
    expr       := expr OP expr | "-" expr | "+" expr | "(" expr ")" | NUMBER | list | NAME
                | FUNCTION "(" expr ")" | REDUCTION "(" expr ["," INTEGER] ")" | PAIRWISE "(" expr "," expr ")"
    OP         := "+" | "-" | "*" | "/" | "@" | "**"
    list       := "[" (NUMBER | list) ("," (NUMBER | list))* "]"

A number or list written inside an expression is a constant (drawn grey, named by its text).

**Safety.** The text is parsed by Python's own parser (``ast.parse`` builds a tree and runs
nothing) and then walked here node by node: each node of the grammar above becomes a minidl op,
any other node (an attribute, a call of anything not in FUNCTIONS, a string, a comparison, an
import, ...) is refused with the line and the piece of text. Nothing is ever passed to ``eval``
or ``exec``. Sizes are bounded (MAX_CHARS characters, MAX_NUMBERS numbers written,
MAX_ELEMENTS elements in any result, MAX_OPS ops, MAX_DEPTH levels of nesting), so no text can
make the server build a big graph or recurse deeply. Every error is an ``ExpressionError``: one
line that says where and what to change.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

import numpy as np

from .. import creation
from ..autograd import ops
from ..errors import MinidlError
from ..autograd.tensor import Tensor
from ..pysyntax import parse

MAX_CHARS = 1000
MAX_NUMBERS = 256
MAX_ELEMENTS = 4096
MAX_OPS = 100
MAX_DEPTH = 40

FUNCTIONS = {"tanh": ops.tanh, "sigmoid": ops.sigmoid, "relu": ops.relu, "leaky_relu": ops.leaky_relu,
             "gelu": ops.gelu, "exp": ops.exp, "log": ops.log, "sqrt": ops.sqrt, "abs": ops.abs,
             "transpose": lambda x: x.transpose()}
REDUCTIONS = {"sum": ops.sum, "mean": ops.mean, "max": ops.max, "logsumexp": ops.logsumexp,
              "softmax": ops.softmax, "log_softmax": ops.log_softmax}      # an optional integer axis
PAIRWISE = {"maximum": ops.maximum, "minimum": ops.minimum}
CALLABLE = (*FUNCTIONS, *REDUCTIONS, *PAIRWISE)                         # every name a call may use
OPERATORS = {ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div, ast.MatMult: ops.matmul,
             ast.Pow: ops.pow}
ALLOWED = "numbers, [lists], names, + - * / @ **, unary -, ( ) and the functions " + ", ".join(CALLABLE)


class ExpressionError(MinidlError, ValueError):
    """A program the Graph view cannot run; the message is one line: where, what, what to do."""


@dataclass
class Program:
    output: Tensor      # the value of the last line
    names: dict         # {name: Tensor}: the variables, the named results and the constants, for the graph
    ops: int            # how many ops ran


def run(text):
    """Parse and run ``text`` with minidl's ops (grad mode must be on for a graph); -> a Program."""
    if not text.strip():
        raise ExpressionError("the expression is empty: type e.g. x = [1, -2, 3]; sum(tanh(x) * x)")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"the expression has {len(text):,} characters; at most {MAX_CHARS:,}: shorten it")
    text = textwrap.dedent(text)                   # lines copied with a common indentation still parse
    try:
        tree = parse(text, mode="exec")
    except SyntaxError as e:
        where = f"line {e.lineno}, column {e.offset}: " if e.lineno else ""   # a NUL byte has no place
        raise ExpressionError(f"{where}syntax error ({e.msg}); allowed: {ALLOWED}") from None
    except (ValueError, MemoryError, RecursionError) as e:     # a NUL byte, a parser stack overflow
        raise ExpressionError(f"the expression cannot be parsed ({type(e).__name__}); shorten it") from None
    _check_depth(tree)
    if not tree.body:
        raise ExpressionError("the expression has no statement: type e.g. sum(tanh([1, -2, 3]))")
    runner = _Runner(text)
    with np.errstate(all="ignore"):                             # log(-1) is nan, 1/0 inf: shown as such
        output = None
        for statement in tree.body:
            output = runner.statement(statement)
    return Program(output, runner.names, runner.ops)


def _check_depth(tree):
    """Refuse trees nested deeper than MAX_DEPTH (walked with a stack, no recursion)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"line {getattr(node, 'lineno', 1)}: nested more than {MAX_DEPTH} deep; "
                                  f"name the inner parts (h = ...) on lines of their own")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Runner:
    """Walks the statements, keeping the variables, and turns each allowed node into minidl ops."""

    def __init__(self, text):
        self.text, self.variables, self.names, self.constants = text, {}, {}, {}
        self.ops = self.numbers = 0

    # --- statements ---
    def statement(self, node):
        if isinstance(node, ast.Expr):
            return self.expr(node.value)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in CALLABLE:
                raise self.error(node.targets[0], "is a function; give the variable another name")
            if _is_literal(node.value):                      # x = [1, 2]: a variable, it requires grad
                value = creation.tensor(self.literal(node.value), requires_grad=True)
            else:
                value = self.expr(node.value)
            self.variables[name] = self.names[name] = value
            return value
        raise self.error(node, "is not allowed: a line is NAME = expression, or an expression")

    # --- expressions ---
    def expr(self, node):
        kind = type(node)
        if kind is ast.BinOp and type(node.op) in OPERATORS:
            left, right = self.expr(node.left), self.expr(node.right)
            return self.apply(node, OPERATORS[type(node.op)], left, right)
        if kind is ast.UnaryOp and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.expr(node.operand)
            return self.apply(node, ops.neg, value) if isinstance(node.op, ast.USub) else value
        if kind is ast.Name:
            if node.id not in self.variables:
                raise self.error(node, "is not defined: assign it first on a line above (e.g. "
                                       f"{node.id} = [1, 2, 3])")
            return self.variables[node.id]
        if kind is ast.Call:
            return self.call(node)
        if _is_literal(node):
            return self.constant(node)
        raise self.error(node, f"is not allowed; write {ALLOWED}")

    def call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if node.keywords or name not in CALLABLE:
            raise self.error(node, f"is not a known function call; the functions are {', '.join(CALLABLE)} "
                                   f"(no keywords)")
        args = node.args
        if name in PAIRWISE:
            if len(args) != 2:
                raise self.error(node, f"{name} takes two arguments, e.g. {name}(x, 0)")
            return self.apply(node, PAIRWISE[name], self.expr(args[0]), self.expr(args[1]))
        if name in FUNCTIONS:
            if len(args) != 1:
                raise self.error(node, f"{name} takes one argument, e.g. {name}(x)")
            return self.apply(node, FUNCTIONS[name], self.expr(args[0]))
        if len(args) not in (1, 2):
            raise self.error(node, f"{name} takes a tensor and optionally an integer axis, e.g. {name}(x, 0)")
        axis = (self.axis(args[1]),) if len(args) == 2 else ()
        return self.apply(node, REDUCTIONS[name], self.expr(args[0]), *axis)

    def axis(self, node):
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if not (isinstance(node, ast.Constant) and type(node.value) is int):
            raise self.error(node, "is not an axis: give a whole number, e.g. 0 or -1")
        return sign * node.value

    # --- numbers ---
    def constant(self, node):
        """A number or list inside an expression: a constant tensor named by its text, made once."""
        text = ast.get_source_segment(self.text, node) or ast.unparse(node)
        if text not in self.constants:
            self.constants[text] = creation.tensor(self.literal(node))
            self.names[text if len(text) <= 24 else text[:21] + "..."] = self.constants[text]
        return self.constants[text]

    def literal(self, node):
        """A number or rectangular nested list as a float32 array."""
        numbers = _numbers(node, self)
        self.numbers += numbers.size
        if self.numbers > MAX_NUMBERS:
            raise self.error(node, f"makes more than {MAX_NUMBERS} numbers in all; the Graph view is for small "
                                   f"tensors")
        return numbers.astype(np.float32)

    # --- ops ---
    def apply(self, node, op, *args):
        """``op(*args)``, counted and size-checked; a shape mismatch becomes a one-line error."""
        self.ops += 1
        if self.ops > MAX_OPS:
            raise self.error(node, f"makes more than {MAX_OPS} ops; the Graph view draws small graphs: simplify it")
        try:
            result = op(*args)
        except (MinidlError, ValueError, TypeError, IndexError) as e:
            raise self.error(node, f"cannot be computed: {' '.join(str(e).split())}") from None
        if result.xp.size(result.data) > MAX_ELEMENTS:
            raise self.error(node, f"gives {result.shape}, more than {MAX_ELEMENTS} numbers; use smaller tensors")
        return result

    def error(self, node, message):
        piece = ast.get_source_segment(self.text, node) or ast.unparse(node)
        piece = " ".join(piece.split())
        piece = piece if len(piece) <= 40 else piece[:37] + "..."
        return ExpressionError(f"line {getattr(node, 'lineno', 1)}: `{piece}` {message}")


def _is_literal(node):
    """A number, a negated number, or a list literal (checked further by ``_numbers``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    # a number is an int or a float: not bool, complex or str; finiteness: see _numbers
    return isinstance(node, ast.List) or (isinstance(node, ast.Constant) and type(node.value) in (int, float))


def _numbers(node, runner):
    """The numbers of a literal as a float64 array; ragged lists, strings and the rest refused."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.List):   # literal_eval refuses -[1, 2]
        numbers = _numbers(node.operand, runner)
        return -numbers if isinstance(node.op, ast.USub) else numbers
    stack, count = [node], 0
    while stack:                                 # first check every element is a number or a list
        item = stack.pop()
        if isinstance(item, ast.List):
            stack.extend(item.elts)
            continue
        if not _is_literal(item):
            raise runner.error(item, "is not a number: lists hold numbers or lists of numbers")
        count += 1
        if count > MAX_NUMBERS:
            raise runner.error(node, f"has more than {MAX_NUMBERS} numbers; the Graph view is for small tensors")
    try:
        numbers = np.array(ast.literal_eval(node), dtype=np.float64)   # literal_eval: literals only, runs nothing
    except (ValueError, TypeError, OverflowError):
        raise runner.error(node, "is not rectangular: every row needs the same length, e.g. [[1, 2], [3, 4]]") \
            from None
    if numbers.size == 0 or not np.isfinite(numbers).all():
        raise runner.error(node, "needs at least one number, each a finite one")
    return numbers

"""Stubbing a function body on the syntax tree: the rest of the file is kept line for line."""
import textwrap

import pytest

from minidl.assignment.manifest import AssignmentError
from minidl.assignment.stubs import replace_bodies, stub_source

SOURCE = textwrap.dedent('''\
    """A module."""
    import math  # kept


    class Op:
        @staticmethod
        def forward(ctx, x):
            """The forward.

            Two lines of docstring."""
            # why the body does what it does: goes with the body
            y = math.exp(x)  # the secret
            ctx.saved = y
            return y

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.saved


    def helper(
        a,
        b,
    ):
        # nothing but a comment before the body
        return a + b  # also secret
        # a trailing comment of the body


    def documented():
        """Only a docstring."""


    # a comment between functions stays
    CONSTANT = 3
    ''')


def run(source, name, *args):
    namespace = {}
    exec(compile(source, "<stubbed>", "exec"), namespace)
    owner, _, attribute = name.rpartition(".")
    target = getattr(namespace[owner], attribute) if owner else namespace[attribute]
    return target(*args)


def test_the_body_is_replaced_and_everything_else_kept():
    stubbed = stub_source(SOURCE, {"Op.forward": "implement this (Op.forward): task 1", "helper": "task 2"})
    assert "the secret" not in stubbed and "math.exp" not in stubbed and "goes with the body" not in stubbed
    assert "also secret" not in stubbed and "trailing comment of the body" not in stubbed
    assert "nothing but a comment" not in stubbed
    for kept in ('"""The forward.', "Two lines of docstring.", "    @staticmethod", "import math  # kept",
                 "return grad * ctx.saved", "# a comment between functions stays", "CONSTANT = 3", "    a,\n"):
        assert kept in stubbed, kept
    with pytest.raises(NotImplementedError, match=r"implement this \(Op.forward\): task 1"):
        run(stubbed, "Op.forward", None, 1.0)
    with pytest.raises(NotImplementedError, match="task 2"):
        run(stubbed, "helper", 1, 2)
    # the lines outside the two bodies are exactly the original ones, in order
    removed = set(SOURCE.splitlines()) - set(stubbed.splitlines())
    assert all(line.strip().startswith(("y =", "ctx.saved =", "return y", "return a + b", "#")) for line in removed)


def test_a_docstring_only_function_gets_the_stub_after_its_docstring():
    stubbed = stub_source(SOURCE, {"documented": "task 3"})
    assert '"""Only a docstring."""' in stubbed
    with pytest.raises(NotImplementedError, match="task 3"):
        run(stubbed, "documented")


def test_an_unknown_target_names_what_the_module_defines():
    with pytest.raises(AssignmentError, match=r"defines no function or method Op\.forwrd; it defines: Op\.forward, "
                                              r"Op\.backward, helper, documented"):
        stub_source(SOURCE, {"Op.forwrd": "x"}, "op.py")


def test_a_one_line_function_is_refused():
    with pytest.raises(AssignmentError, match="same line"):
        stub_source("def f(): return 1\n", {"f": "x"})


def test_a_body_can_be_replaced_by_other_code():
    # how the mutation tests write a wrong solution: the docstring and every other line stay
    replaced = replace_bodies(SOURCE, {"Op.forward": "y = 2 * math.exp(x)\nctx.saved = y\nreturn y"})
    assert '"""The forward.' in replaced and "the secret" not in replaced and "return grad * ctx.saved" in replaced
    assert run(replaced, "Op.forward", type("Ctx", (), {})(), 0.0) == 2.0

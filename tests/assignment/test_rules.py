"""The rules grading reads off the source (no torch in an op or a model method, no np. calls in an op), and the
checks that name a wrong-shaped gradient or a NumPy conversion on the torch backend in the op's terms."""
import textwrap

import numpy as np
import pytest

from minidl.assignment.checks import NumpyOnTorch, check_gradients, tensor, torch_refuses_numpy, watched_backwards
from minidl.assignment.rules import source_findings
from minidl.autograd.function import Function

OPS = textwrap.dedent('''\
    import numpy as np
    import torch as T

    SCALE = np.sqrt(2.0)            # module-level NumPy for constants is fine


    def _helper(x):
        return T.sigmoid(x)


    def _by_hand(xp, x):
        return xp.exp(x) * np.pi       # a NumPy constant, not a call


    class Op:
        @staticmethod
        def forward(ctx, x):
            return _by_hand(ctx.xp, x)

        @staticmethod
        def backward(ctx, grad):
            import torch
            return torch.autograd.grad(ctx.out, ctx.inputs, grad)

        @staticmethod
        def sneaky(ctx, x):
            return _helper(x)

        @staticmethod
        def numpy_inside(ctx, grad):
            return np.asarray(grad) * np.exp(ctx.saved[0])


    class Model:
        def forward(self, ids):
            return T.softmax(self.embed(ids), dim=-1)


    def top_k(logits, k):
        import torch
        return torch.topk(torch.from_numpy(logits), k)
    ''')


def test_an_op_that_keeps_the_rules_passes():
    assert source_findings(OPS, "Op.forward") == []


def test_torch_autograd_in_a_backward_is_named():
    assert source_findings(OPS, "Op.backward") == [
        "Op.backward uses torch.autograd (torch.autograd.grad, line 23): write the backward by hand with ctx.xp; "
        "torch's autograd is off while grading"]


def test_torch_in_a_helper_of_the_same_file_is_found():
    (message,) = source_findings(OPS, "Op.sneaky")
    assert message.startswith("Op.sneaky uses T.sigmoid (line 8, in _helper, which it calls): write it with ctx.xp")


def test_np_calls_in_an_op_are_named_once_and_constants_are_not():
    assert source_findings(OPS, "Op.numpy_inside") == [
        "Op.numpy_inside calls np.asarray (line 31): use ctx.xp (the backend's namespace), not np: np fails on "
        "torch tensors on a GPU"]
    assert source_findings(OPS, "_by_hand") == []


def test_np_bound_to_the_backend_is_the_backend():
    """``np = ctx.xp`` then ``np.exp(x)`` failed the task as a NumPy call; ``np.asarray`` is still one where np is
    NumPy."""
    source = OPS + textwrap.dedent('''\

        class Renamed:
            @staticmethod
            def forward(ctx, x):
                np = ctx.xp
                return np.exp(x)

            @staticmethod
            def backward(ctx, grad):
                return np.asarray(grad)
        ''')
    assert source_findings(source, "Renamed.forward") == []
    assert source_findings(source, "Renamed.backward")[0].startswith("Renamed.backward calls np.asarray (line 51)")


def test_a_model_method_may_not_use_torch_and_a_plain_function_may():
    assert source_findings(OPS, "Model.forward")[0].startswith("Model.forward uses T.softmax (line 36)")
    assert source_findings(OPS, "top_k") == []   # fill-mask's _most_probable is meant to call torch.topk


def test_a_renamed_target_and_a_syntax_error():
    assert source_findings(OPS, "Op.gone", "ops.py") == [
        "Op.gone is no longer defined in ops.py: keep the names and signatures the copy gave you"]
    assert source_findings("def f(:\n", "f") == []   # the tests report the syntax error themselves


class _Transposing(Function):
    """out = a @ b whose backward returns dL/db transposed."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return grad @ ctx.xp.swap_last(b), ctx.xp.swap_last(grad) @ a


class _Crashing(_Transposing):
    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return grad @ b, None


def test_a_gradient_of_the_wrong_shape_is_named_with_its_input():
    a, b = tensor(np.ones((3, 4))), tensor(np.ones((4, 2)))
    with pytest.raises(AssertionError, match=r"^_Transposing\.backward returned dL/db of shape \(2, 4\); b has "
                                             r"shape \(4, 2\)$"):
        check_gradients("_Transposing", _Transposing.apply, {"a": a, "b": b})
    with pytest.raises(AssertionError, match=r"^_Crashing\.backward raised ValueError: matmul: .* \(dL/dout \(3, 2\); "
                                             r"a \(3, 4\), b \(4, 2\)\): check the shapes of its products$"):
        check_gradients("_Crashing", _Crashing.apply, {"a": a, "b": b})
    assert "backward" in _Transposing.__dict__ and _Transposing.backward.__name__ == "backward"  # restored


def test_torch_tensors_refuse_numpy_only_inside_the_block():
    torch = pytest.importorskip("torch")
    t = torch.ones(3, dtype=torch.float64)

    def by_numpy(x):
        return np.exp(x)

    with watched_backwards(), torch_refuses_numpy():
        with pytest.raises(NumpyOnTorch, match=r"^test_torch_tensors_refuse_numpy_only_inside_the_block\.<locals>\."
                                               r"by_numpy \(tests/assignment/test_rules\.py:\d+\) turned a torch "
                                               r"tensor into a NumPy array on the torch backend: use ctx\.xp"):
            by_numpy(t)
        assert t.numpy().sum() == 3   # explicit conversions still work
    assert np.asarray(t).sum() == 3


ANSWER_KEPT = textwrap.dedent('''\
    class Linear:
        @staticmethod
        def backward(ctx, grad):
            return grad @ ctx.xp.swap_last(ctx.saved[1]), None


    def _mine(ctx, grad):
        return Linear.backward(ctx, grad)


    class MatMul:
        @staticmethod
        def backward(ctx, grad):
            return _mine(ctx, grad)

        @staticmethod
        def direct(ctx, grad):
            return Linear.backward(ctx, grad)

        @staticmethod
        def honest(ctx, grad):
            return grad @ ctx.xp.swap_last(ctx.saved[1]), None
    ''')


def test_a_target_may_not_call_the_code_that_holds_its_answer():
    forbid = ("Linear.backward",)
    assert source_findings(ANSWER_KEPT, "MatMul.backward", "linalg.py", forbid) == [
        "MatMul.backward calls Linear.backward (through _mine), which computes this task's answer for other code "
        "in the copy: write the computation in MatMul.backward itself"]
    assert source_findings(ANSWER_KEPT, "MatMul.direct", "linalg.py", forbid)[0].startswith(
        "MatMul.direct calls Linear.backward, which")
    assert source_findings(ANSWER_KEPT, "MatMul.honest", "linalg.py", forbid) == []
    assert source_findings(ANSWER_KEPT, "MatMul.backward", "linalg.py") == []   # nothing forbidden, nothing found


def test_a_file_that_is_not_utf8_is_named_for_its_task(tmp_path):
    """A byte 0xe9 in a student's file ended the whole grading with the grader's UnicodeDecodeError,
    naming no file."""
    from minidl.assignment.manifest import Target, Task
    from minidl.assignment.rules import task_findings

    (tmp_path / "ops.py").write_bytes(OPS.encode() + b"# caf\xe9\n")
    target = Target("ops.py", "Op.backward")
    task = Task(1, "ops", 10, (target,), ("grading/test_ops.py",))
    ((found, message),) = task_findings(tmp_path, task)
    assert found == target and message.startswith("ops.py is not UTF-8 text (byte 0xe9 at position ")
    assert message.endswith("): save it as UTF-8")

"""The switch: which path each array takes, the modes, and minidl without Triton."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import minidl as md
from minidl import kernels
from minidl.kernels import dispatch
from minidl.models import build_model


def test_auto_sends_cpu_tensors_to_the_reference_and_forced_modes_win():
    cpu = torch.zeros(3)
    assert kernels.get_mode() == "auto" and not kernels.use_kernel(cpu)
    with kernels.mode("triton"):
        assert kernels.use_kernel(cpu) == kernels.interpreting()  # the tests run under the interpreter
        with kernels.mode("reference"):
            assert not kernels.use_kernel(cpu)
        assert kernels.get_mode() == "triton"
    assert kernels.get_mode() == "auto"


def test_half_precision_takes_the_reference_path_in_auto_and_is_refused_in_one_line_when_forced():
    """The kernels take float32/float64 only: a float16 CUDA tensor went to them in "auto" and crashed inside
    Triton ("Expected dtype ['fp32', 'fp64'] but got fp16")."""
    from minidl.autograd import ops
    from minidl.errors import OpError

    class Cuda(torch.Tensor):   # a CPU tensor that says it is on the GPU: what "auto" sees of a CUDA one
        is_cuda = property(lambda self: True)

    assert kernels.use_kernel(torch.zeros(3).as_subclass(Cuda))
    assert not kernels.use_kernel(torch.zeros(3, dtype=torch.float16).as_subclass(Cuda))
    q = md.randn(1, 1, 5, 4, device="torch", dtype="float16")
    with kernels.mode("triton"), pytest.raises(OpError, match="the Triton kernels take float32 or float64, got "
                                                              "torch.float16; convert with .float()"):
        ops.scaled_dot_product_attention(q, q, q)


@pytest.mark.parametrize("name", kernels.MODES)
def test_numpy_arrays_never_use_a_kernel(name):
    kernels.set_mode(name)
    assert not kernels.use_kernel(np.zeros(3))


def test_the_op_records_the_path_it_took(kernel_device):
    x = md.randn(2, 3, 6, device=kernel_device, requires_grad=True)
    h0 = md.zeros(2, 2, device=kernel_device)
    U_zr, U_h = md.randn(2, 4, device=kernel_device), md.randn(2, 2, device=kernel_device)
    assert md.gru(x, h0, U_zr, U_h)._ctx.kernel == (kernel_device == "cuda")
    with kernels.mode("reference"):
        assert not md.gru(x, h0, U_zr, U_h)._ctx.kernel
    with kernels.mode("triton"):
        assert md.gru(x, h0, U_zr, U_h)._ctx.kernel
    numpy_x = md.randn(2, 3, 6, requires_grad=True)
    with kernels.mode("triton"):
        assert not md.gru(numpy_x, md.zeros(2, 2), md.randn(2, 4), md.randn(2, 2))._ctx.kernel


@pytest.mark.parametrize("mode", ["triton", "reference"])
def test_hidden_weights_of_another_width_or_dtype_are_refused_on_both_paths(kernel_device, mode):
    """The kernel path took U_h (H, H) as U_zr, U (H, 2H) for an Elman RNN and float64 inputs with
    float32 weights, and answered (on a GPU, read past the end of U); the reference path refused."""
    from minidl.autograd.function import OpError, ShapeError

    x, h0, x1 = md.randn(2, 3, 12, device=kernel_device), md.randn(2, 4, device=kernel_device), md.randn(
        2, 3, 4, device=kernel_device)
    square, wide = md.randn(4, 4, device=kernel_device), md.randn(4, 8, device=kernel_device)
    with kernels.mode(mode):
        with pytest.raises(ShapeError, match=r"gru: expected .* hidden weights \(H, 2·H\), \(H, H\); got"):
            md.gru(x, h0, square, square)
        with pytest.raises(ShapeError, match="elman_rnn: expected"):
            md.elman_rnn(x1, h0, wide)
        with pytest.raises(OpError, match="gru: x_proj, h0 and the hidden weights must have one dtype, got float64"):
            md.gru(x.double(), h0, wide, square)
        assert md.gru(x, h0, wide, square).shape == (2, 3, 4)


def test_bad_mode_and_cpu_tensors_outside_the_interpreter_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="auto, triton, reference"):
        kernels.set_mode("fast")
    monkeypatch.setattr(dispatch, "interpreting", lambda: False)
    with kernels.mode("triton"), pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        kernels.use_kernel(torch.zeros(3))
    B, T, H = 2, 3, 4   # a kernel launched on CPU tensors by hand: Triton's own error was "0 active drivers"
    with pytest.raises(RuntimeError, match="minidl's Triton kernels: CPU tensors need Triton's interpreter"):
        kernels.gru_forward(torch.zeros(B, T, 3 * H), torch.zeros(B, H), torch.zeros(H, 2 * H), torch.zeros(H, H))
    with pytest.raises(RuntimeError, match="CPU tensors need Triton's interpreter"):
        kernels.cross_entropy_forward(torch.zeros(B, H), torch.zeros(B, dtype=torch.int64))


def test_minidl_works_without_triton():
    script = """
import sys
sys.modules["triton"] = None  # import triton now fails
import minidl as md
from minidl import kernels
x = md.randn(2, 3, 6, device="torch", requires_grad=True)
h0, U_zr, U_h = md.zeros(2, 2, device="torch"), md.randn(2, 4, device="torch"), md.randn(2, 2, device="torch")
md.gru(x, h0, U_zr, U_h).sum().backward()
assert not kernels.triton_available() and x.grad is not None
kernels.set_mode("triton")
try:
    kernels.use_kernel(x.data)
except RuntimeError as e:
    assert "needs Triton" in str(e)
else:
    raise AssertionError("forcing the kernels without Triton must fail")
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


@pytest.mark.parametrize("model", ["rnn", "gru", "attention"])
def test_models_train_the_same_on_both_paths(kernel_device, model):
    """A whole classifier: embeddings, padding, lengths, the fused op and cross-entropy."""
    md.manual_seed(0)
    net = build_model(model, 20, hidden=13, embed_dim=6, device=kernel_device, dtype="float64")
    lengths = np.array([7, 4, 1])
    mask = np.arange(7)[None, :] < lengths[:, None]
    ids = np.where(mask, np.random.default_rng(0).integers(1, 20, (3, 7)), 0)
    batch = [md.tensor(a, device=kernel_device) for a in (ids, mask.astype(np.float64), lengths, [0, 1, 1])]

    def loss_and_grads(name):
        for p in net.parameters():
            p.grad = None
        with kernels.mode(name):
            loss = md.cross_entropy(net(*batch[:3]).logits, batch[3])
            loss.backward()
        return [loss.numpy()] + [p.grad.numpy() for p in net.parameters()]

    for want, got in zip(loss_and_grads("reference"), loss_and_grads("triton")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

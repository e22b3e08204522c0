"""Persistent Elman RNN and GRU kernels = the reference BPTT, forward and backward."""
import numpy as np
import pytest
import torch

import minidl as md
from minidl import kernels
from minidl.autograd import ops
from minidl.gradcheck import gradcheck

from .common import assert_kernel_matches_reference, tf32


RECURRENCES = {
    "gru": (3, lambda x_proj, h0, U_zr, U_h: ops.gru(x_proj, h0, U_zr, U_h)),
    "rnn_relu": (1, lambda x_proj, h0, U: ops.elman_rnn(x_proj, h0, U, "relu")),
    "rnn_tanh": (1, lambda x_proj, h0, U: ops.elman_rnn(x_proj, h0, U, "tanh")),
}


def _case(name, B, T, H, seed=0):
    """The op and its inputs: x_proj (B, T, gates·H), h0 (B, H), then U (H, H) or U_zr (H, 2H) and U_h (H, H)."""
    gates, fn = RECURRENCES[name]
    rng = np.random.default_rng(seed)
    weights = [(H, 2 * H), (H, H)] if name == "gru" else [(H, H)]
    return fn, ([rng.standard_normal((B, T, gates * H)), rng.standard_normal((B, H))]
                + [rng.standard_normal(shape) / np.sqrt(H) for shape in weights])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("H", [5, 13, 33])
@pytest.mark.parametrize("name", list(RECURRENCES))
def test_matches_reference(kernel_device, name, H, dtype):
    fn, arrays = _case(name, B=3, T=7, H=H)
    assert_kernel_matches_reference(fn, arrays, range(len(arrays)), kernel_device, dtype)


@pytest.mark.parametrize("name", list(RECURRENCES))
def test_a_transposed_initial_state(kernel_device, name):
    """h0 a (B, H) view of an (H, B) array: dL/dh0 was written in a contiguous layout into a buffer of the
    view's strides (off by 2.5 for the Elman RNN, 1.0 for the GRU)."""
    fn, arrays = _case(name, B=3, T=4, H=5)
    arrays[1] = np.ascontiguousarray(arrays[1].T)     # stored (H, B)

    def with_transposed_h0(x_proj, h0, *weights):
        return fn(x_proj, h0.transpose(), *weights)
    assert_kernel_matches_reference(with_transposed_h0, arrays, range(len(arrays)), kernel_device, "float64")


@pytest.mark.parametrize("B,T", [(1, 1), (17, 2), (2, 0)])  # one step; more rows than one program's 16; no step
@pytest.mark.parametrize("name", list(RECURRENCES))
def test_matches_reference_at_the_edges(kernel_device, name, B, T):
    fn, arrays = _case(name, B, T, H=4, seed=1)
    assert_kernel_matches_reference(fn, arrays, range(len(arrays)), kernel_device, "float32")


@pytest.mark.parametrize("name", list(RECURRENCES))
def test_tf32_products(kernel_device, name):
    """After torch.set_float32_matmul_precision("high") the kernels' tl.dot takes TF32 inputs."""
    from minidl.kernels.recurrent import launch_config

    fn, arrays = _case(name, B=3, T=7, H=20)
    with tf32():
        assert launch_config(torch.float32, 3, 20)[1]["PRECISION"] == "tf32"
        assert_kernel_matches_reference(fn, arrays, range(len(arrays)), kernel_device, "float32", "tf32")
    assert launch_config(torch.float32, 3, 20)[1]["PRECISION"] == "ieee"


@pytest.mark.parametrize("name", list(RECURRENCES))
def test_gradcheck_through_the_kernel(kernel_device, name):
    fn, arrays = _case(name, B=1, T=3, H=2, seed=2)  # tiny: each of the 4 evaluations per element is a launch
    tensors = [md.tensor(a, dtype="float64", device=kernel_device, requires_grad=True) for a in arrays]
    with kernels.mode("triton"):
        assert fn(*tensors)._ctx.kernel
        result = gradcheck(fn, tensors)
    assert result.ok, str(result)

"""The transformer's attention kernel = the reference path: output and the three gradients."""
import numpy as np
import pytest
import torch

import minidl as md
from minidl import kernels
from minidl.autograd import ops
from minidl.gradcheck import gradcheck
from minidl.kernels.attention import launch_config

from .common import assert_kernel_matches_reference, attention_inputs, tf32


def _inputs(B, heads, T, d, seed=0):
    return attention_inputs((B, heads, T, d), seed)


def _attention(causal, masked=True):
    if masked:
        return lambda q, k, v, mask: ops.scaled_dot_product_attention(q, k, v, mask, causal)
    return lambda q, k, v, mask: ops.scaled_dot_product_attention(q, k, v, None, causal)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("T,d", [(1, 3), (7, 5), (37, 4), (20, 24)])  # one row; one block; several; d > 16
def test_matches_reference(kernel_device, T, d, masked, causal, dtype):
    assert_kernel_matches_reference(_attention(causal, masked), _inputs(2, 3, T, d), [0, 1, 2], kernel_device,
                                    dtype)


@pytest.mark.parametrize("causal", [False, True])
def test_heads_split_as_views(kernel_device, causal):
    """MultiHeadSelfAttention hands the kernel (B, h, T, d) views of (B, T, h, d) arrays: the backward wrote
    its gradients in a contiguous layout into buffers with the views' strides (dL/dx off by 9 where it was 3)."""
    *qkv, mask = attention_inputs((2, 3, 7, 5))
    q, k, v = (np.ascontiguousarray(a.transpose(0, 2, 1, 3)) for a in qkv)     # stored (B, T, h, d)

    def heads_split(q, k, v, mask):
        return ops.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, causal)
    assert_kernel_matches_reference(heads_split, [q, k, v, mask], [0, 1, 2], kernel_device, "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True])
def test_queries_that_see_no_key(kernel_device, causal, dtype):
    """Rows of pure padding attend uniformly over all T keys, as in the reference path. Causal,
    the first 30 queries of sequence 1 see no key: its keys 0..29 are padding and 30.. in their
    future, so their programs must go past the diagonal, forward and backward."""
    arrays = _inputs(2, 2, 37, 5, seed=1)
    arrays[3][0] = 0.0                # a sequence with no real token
    arrays[3][1] = 0.0
    arrays[3][1, 30:] = 1.0
    assert_kernel_matches_reference(_attention(causal), arrays, [0, 1, 2], kernel_device, dtype)


@pytest.mark.parametrize("causal", [False, True])
def test_tf32_products(kernel_device, causal):
    """After torch.set_float32_matmul_precision("high") the kernels' tl.dot takes TF32 inputs."""
    with tf32():
        assert launch_config(torch.float32, 2, 3, 37, 4, True, causal)[1]["PRECISION"] == "tf32"
        assert_kernel_matches_reference(_attention(causal), _inputs(2, 3, 37, 4), [0, 1, 2], kernel_device,
                                        "float32", "tf32")


def test_zero_positions_give_an_empty_output_and_gradients_on_every_path(kernel_device):
    """The array path had no block to join ("need at least one array to concatenate") and torch's fused CPU
    attention ("auto" on torch CPU tensors) killed the process with SIGFPE, while the kernel gave (B, h, 0, d)."""
    for device, mode in (("cpu", "auto"), ("torch", "reference"), ("torch", "auto"), (kernel_device, "triton")):
        q, k, v = (md.zeros(1, 2, 0, 4, device=device, requires_grad=True) for _ in range(3))
        with kernels.mode(mode):
            out = ops.scaled_dot_product_attention(q, k, v, np.ones((1, 0)), causal=True)
            out.sum().backward()
        assert out.shape == q.grad.shape == k.grad.shape == v.grad.shape == (1, 2, 0, 4)


def test_the_cases_span_several_key_blocks():
    """Some case above must walk over more than one block of keys in each dtype, else the
    online softmax's rescaling and the causal diagonal are never exercised."""
    for dtype in (torch.float32, torch.float64):
        for dot in ("ieee", "tf32") if dtype == torch.float32 else (None,):
            _, constexprs, _ = launch_config(dtype, 2, 3, 37, 4, True, True, dot)
            assert 37 > constexprs["BLOCK"], (dtype, constexprs)


def test_gradcheck_through_the_kernel(kernel_device):
    q, k, v, _ = _inputs(1, 1, 4, 2, seed=2)  # tiny: each of the 4 evaluations per element is a launch
    tensors = [md.tensor(a, dtype="float64", device=kernel_device, requires_grad=True) for a in (q, k, v)]
    mask = md.tensor([[1.0, 1.0, 1.0, 0.0]], dtype="float64", device=kernel_device)
    with kernels.mode("triton"):
        for causal in (False, True):
            result = gradcheck(lambda q, k, v: ops.scaled_dot_product_attention(q, k, v, mask, causal), tensors)
            assert result.ok, f"causal={causal}: {result}"


def test_the_kernel_keeps_no_T_by_T_array(kernel_device):
    """What the kernel path keeps for the backward grows as T·d, not T²: q, k, v, the output
    and two numbers per row (the reference, one block at this size, keeps the (B, h, T, T)
    exponentials; tests/autograd/test_attention.py checks its blocks)."""
    B, heads, T, d = 1, 2, 40, 3
    q, k, v, mask = (md.tensor(a, device=kernel_device, requires_grad=i < 3) for i, a in
                     enumerate(_inputs(B, heads, T, d)))
    for mode, largest in (("triton", B * heads * T * d), ("reference", B * heads * T * T)):
        with kernels.mode(mode):
            out = ops.scaled_dot_product_attention(q, k, v, mask, True)
        saved = [a for a in out._ctx.saved if a is not None]
        saved = [a for a in saved if not isinstance(a, tuple)] + [a for t in saved if isinstance(t, tuple)
                                                                 for a in t if a is not None]
        assert max(a.numel() for a in saved) == largest, mode

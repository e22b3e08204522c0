"""Windowed self-attention kernel = the reference path: output, weights and the three gradients."""
import numpy as np
import pytest

import minidl as md
from minidl import kernels
from minidl.autograd import ops
from minidl.gradcheck import gradcheck

from .common import assert_kernel_matches_reference, attention_inputs


def _inputs(B, T, d, seed=0):
    return attention_inputs((B, T, d), seed)


def _attention(radius):
    return lambda q, k, v, mask: ops.window_attention(q, k, v, mask, radius)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("T,radius", [(7, 1), (7, 2), (7, 5), (2, 5), (23, 2)])  # 2r + 1 > T; several blocks
@pytest.mark.parametrize("d", [5, 13])
def test_matches_reference(kernel_device, T, radius, d, dtype):
    assert_kernel_matches_reference(_attention(radius), _inputs(3, T, d), [0, 1, 2], kernel_device, dtype)


def test_transposed_views(kernel_device):
    """q, k, v that are (B, T, d) views of (B, d, T) arrays: the backward's gradients came out scrambled."""
    *qkv, mask = attention_inputs((2, 7, 5))
    q, k, v = (np.ascontiguousarray(a.transpose(0, 2, 1)) for a in qkv)     # stored (B, d, T)

    def transposed(q, k, v, mask):
        return ops.window_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, 2)
    assert_kernel_matches_reference(transposed, [q, k, v, mask], [0, 1, 2], kernel_device, "float64")


def test_padding_rows_and_radius_zero(kernel_device):
    arrays = _inputs(2, 6, 4, seed=1)
    arrays[3][0] = 0.0  # a sequence with no real word: weights and output all zero
    assert_kernel_matches_reference(_attention(0), arrays, [0, 1, 2], kernel_device, "float64")
    assert_kernel_matches_reference(_attention(2), arrays, [0, 1, 2], kernel_device, "float64")


def test_gradcheck_through_the_kernel(kernel_device):
    q, k, v, _ = _inputs(1, 4, 2, seed=2)  # tiny: each of the 4 evaluations per element is a launch
    tensors = [md.tensor(a, dtype="float64", device=kernel_device, requires_grad=True) for a in (q, k, v)]
    mask = md.tensor([[1.0, 1.0, 1.0, 0.0]], dtype="float64", device=kernel_device)
    with kernels.mode("triton"):
        result = gradcheck(lambda q, k, v: ops.window_attention(q, k, v, mask, 2)[0], tensors)
    assert result.ok, str(result)

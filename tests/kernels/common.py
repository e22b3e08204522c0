"""Run one fused op on both paths and compare everything it produces."""
from contextlib import contextmanager

import numpy as np

import minidl as md
from minidl import kernels

# float32: the kernels sum in another order than the reference (tl.dot, tile reductions);
# "tf32": float32 after torch.set_float32_matmul_precision("high"), where on a GPU both paths
# multiply with 10-bit mantissas (about 1e-3 relative per product; on the CPU nothing changes)
TOLERANCES = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10),
              "tf32": dict(rtol=2e-2, atol=2e-2)}


def attention_inputs(shape, seed=0):
    """q, k, v of ``shape`` (B, ..., T, d) and a mask (B, T): each sequence padded after a random
    length, and the last one with holes inside too."""
    rng = np.random.default_rng(seed)
    B, T = shape[0], shape[-2]
    mask = np.ones((B, T))
    for b, length in enumerate(rng.integers(1, T + 1, B)):
        mask[b, length:] = 0
    if T > 2:
        mask[-1, 1:-1] = 0
    return [rng.standard_normal(shape) for _ in range(3)] + [mask]


def run(fn, arrays, differentiable, device, dtype, mode):
    """``fn(*tensors)`` in ``mode``, back-propagating a fixed random gradient from its (first) output.

    ``arrays``: NumPy inputs; float arrays become ``dtype`` Tensors on ``device``, those whose
    position is in ``differentiable`` with requires_grad. Returns NumPy copies of every output
    followed by the gradient of each differentiable input.
    """
    tensors = [md.tensor(a, device=device, dtype=dtype if a.dtype.kind == "f" else None,
                         requires_grad=i in differentiable) for i, a in enumerate(arrays)]
    with kernels.mode(mode):
        outputs = fn(*tensors)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        assert outputs[0]._ctx.kernel == (mode == "triton"), "the op did not take the path asked for"
        outputs[0].backward(np.random.default_rng(1).standard_normal(outputs[0].shape))
    return [o.numpy() for o in outputs] + [tensors[i].grad.numpy() for i in differentiable]


def assert_kernel_matches_reference(fn, arrays, differentiable, device, dtype, tolerance=None):
    reference = run(fn, arrays, differentiable, device, dtype, "reference")
    kernel = run(fn, arrays, differentiable, device, dtype, "triton")
    for i, (want, got) in enumerate(zip(reference, kernel)):
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **TOLERANCES[tolerance or dtype],
                                   err_msg=f"result {i} (outputs, then gradients)")


@contextmanager
def tf32():
    """float32 products on tensor cores, as ``torch.set_float32_matmul_precision("high")`` asks."""
    import torch

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)

"""Run one fused op on both paths and compare everything it produces."""
import numpy as np

import minidl as md
from minidl import kernels

# float32: the kernels sum in another order than the reference (tl.dot, tile reductions)
TOLERANCES = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10)}


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


def assert_kernel_matches_reference(fn, arrays, differentiable, device, dtype):
    reference = run(fn, arrays, differentiable, device, dtype, "reference")
    kernel = run(fn, arrays, differentiable, device, dtype, "triton")
    for i, (want, got) in enumerate(zip(reference, kernel)):
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **TOLERANCES[dtype], err_msg=f"result {i} (outputs, then gradients)")

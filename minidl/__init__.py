"""minidl: a from-scratch deep-learning framework for teaching, every gradient written by hand.

    import minidl as md
    x = md.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad  # -> array([[2., 4.]], dtype=float32)
"""
from .autograd import (Context, Function, MinidlError, OpError, ShapeError, Tensor, default_dtype, detect_anomaly,
                       enable_grad, get_default_dtype, is_grad_enabled, no_grad, set_default_dtype)
from .autograd.ops import *  # noqa: F401,F403  (the functional API: md.relu, md.matmul, ...)
from .autograd.ops import __all__ as _ops_all
from .backend import get_backend, manual_seed
from .creation import arange, ones, rand, randn, tensor, zeros, zeros_like

from .version import __version__

__all__ = ["Context", "Function", "MinidlError", "OpError", "ShapeError", "Tensor", "arange", "default_dtype",
           "detect_anomaly", "enable_grad", "get_backend", "get_default_dtype", "is_grad_enabled",
           "manual_seed", "no_grad", "ones", "rand", "randn", "set_default_dtype", "tensor", "zeros",
           "zeros_like", *_ops_all]
from . import datasets, nn, optim  # noqa: E402  (subpackages built on the names above)

# The heavier packages load on first use (PEP 562): ``md.compress``, ``md.train``, ... or ``import minidl.train``.
_LAZY = ("assignment", "baseline", "bench", "compress", "data", "experiments", "gradcheck", "kernels", "mlm", "models",
         "train", "viz", "web")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

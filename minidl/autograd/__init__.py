"""The autograd engine: Tensor, Function, backward, and the differentiable ops."""
# tensor first: it imports the ops, which need function, which needs the Tensor class.
from .tensor import Tensor, default_dtype, get_default_dtype, set_default_dtype  # isort: skip
from .engine import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .function import Context, Function, MinidlError, OpError, ShapeError

__all__ = ["Context", "Function", "MinidlError", "OpError", "ShapeError", "Tensor", "default_dtype",
           "detect_anomaly", "enable_grad", "get_default_dtype", "is_grad_enabled", "no_grad",
           "set_default_dtype"]

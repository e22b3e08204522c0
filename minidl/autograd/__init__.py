"""The autograd engine: Tensor, Function, backward, and the differentiable ops."""
# tensor first: the ops need function, which needs the Tensor class; Tensor's methods then get the ops.
from . import tensor as _tensor  # isort: skip
from .tensor import Tensor, default_dtype, get_default_dtype, set_default_dtype  # isort: skip
from . import ops as _ops_module  # isort: skip
from .engine import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from ..errors import MinidlError, OpError, ShapeError
from .function import Context, Function

_tensor._ops = _ops_module

__all__ = ["Context", "Function", "MinidlError", "OpError", "ShapeError", "Tensor", "default_dtype",
           "detect_anomaly", "enable_grad", "get_default_dtype", "is_grad_enabled", "no_grad",
           "set_default_dtype"]

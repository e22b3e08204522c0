"""``Tensor``: a backend array, its gradient, and the node of the graph that made it.

* ``data``          -- a NumPy array (device ``"cpu"``) or a torch tensor (``"torch"``, ``"cuda"``);
* ``grad``          -- an array of the same shape and backend, filled by ``backward()``
                       (``None`` until then);
* ``requires_grad`` -- whether gradients flow to (and through) this tensor;
* ``_ctx``          -- the ``Context`` of the op that produced it (``None`` for a leaf).

``Tensor(data)`` copies ``data``. Floating-point data is stored in the default dtype (float32, see ``set_default_dtype``)
unless ``dtype=`` says otherwise; integer and boolean data (indices, masks), and a Tensor, keep theirs.
"""
from __future__ import annotations

import contextlib
import numbers
import operator

import numpy as np

from .. import backend as _backend
from ..errors import OpError, ShapeError
from . import engine
from .broadcast import broadcast_shape

_default_dtype = "float32"


def get_default_dtype():
    return _default_dtype


def set_default_dtype(dtype):
    """Make ``dtype`` ("float32" or "float64", or np.float64...) the dtype of new floating-point tensors."""
    global _default_dtype
    if _backend.dtype_name_of(dtype) not in _backend.FLOAT_DTYPES:
        raise ValueError(f"default dtype must be one of {_backend.FLOAT_DTYPES}, got {dtype!r}")
    _default_dtype = _backend.dtype_name_of(dtype)


@contextlib.contextmanager
def default_dtype(dtype):
    """``with default_dtype("float64"):`` -- new tensors in the block are float64."""
    previous = _default_dtype
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


def is_float(xp, array):
    """Whether ``array`` holds floating-point values (float16/32/64, bfloat16)."""
    return xp.dtype_name(array).startswith(("float", "bfloat"))


def _comparison(op):
    """Tensor's comparison method for ``op`` (operator.gt, ...): ``op`` on the arrays, as a constant tensor."""
    def compare(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.data, other), self.xp)
    return compare


class Tensor:
    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__, not an object array
    _changed_at = 0   # engine.changed_in_place: when a step (p -= lr * p.grad) last changed the array in place

    def __init__(self, data, requires_grad=False, device=None, dtype=None):
        if isinstance(data, Tensor):   # its dtype kept, as torch.tensor(t) does (a float64 one became float32)
            data, dtype = data.data, dtype or data.dtype
        if device is None and not isinstance(data, (np.ndarray, list, tuple)) and not np.isscalar(data):
            xp = _backend.backend_of(data)  # a torch tensor stays where it is
        else:
            xp = _backend.get_backend(device)
        array = xp.array(data, dtype)  # a copy: the caller's array is never updated in place
        if isinstance(array, np.ndarray) and array.dtype.kind not in "biuf":
            raise TypeError("a Tensor holds real numbers or booleans, not " + {
                "c": "complex numbers", "U": "text", "S": "bytes", "O": "objects (None, mixed types, or whole numbers "
                "beyond 64 bits)"}.get(array.dtype.kind, f"{array.dtype} data"))
        if dtype is None and is_float(xp, array) and xp.dtype_name(array) != _default_dtype:
            array = xp.astype(array, _default_dtype)
        self.data = array
        self.xp = xp
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self.requires_grad_(bool(requires_grad))  # refuses data that is not floating-point

    @classmethod
    def _wrap(cls, array, xp, requires_grad=False):
        """Build a Tensor around an array an op produced (no copy, no dtype change)."""
        t = cls.__new__(cls)
        t.data, t.xp, t.grad = xp.wrap(array), xp, None
        t.requires_grad, t._ctx, t._retains_grad = requires_grad, None, False
        return t

    # --- description ------------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.xp.dtype_name(self.data)

    @property
    def device(self):
        return _backend.device_name(self.xp)

    device_of = staticmethod(_backend.device_name)   # the device string of a backend

    @property
    def is_leaf(self):
        return self._ctx is None

    def size(self):
        return self.xp.size(self.data)

    def __len__(self):
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor (one value): it has no length; .item() is its value")
        return len(self.data)

    def __iter__(self):
        """The tensor's rows (along axis 0), each a tensor in the graph. (Without it Python would
        index until an IndexError, and an index past the end is the getitem op's ShapeError.)"""
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        """The truth of a one-value tensor (``if loss < 0.1``); for more values, as in NumPy, an error."""
        if self.size() != 1:
            raise ValueError(f"the truth value of a tensor of {self.size()} values is ambiguous; compare its values "
                             f"with .numpy().any() or .numpy().all()")
        return bool(self.item())

    def __float__(self):
        if self.size() != 1:
            raise TypeError(f"float() of a tensor of {self.size()} values; .numpy() gives them all")
        return float(self.item())

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._ctx.fn.op_name()}" if self._ctx is not None else ""
        values = np.array2string(self.numpy(), precision=4, threshold=20, separator=", ")
        return f"Tensor({values}, device={self.device!r}, dtype={self.dtype}{grad}{op})"

    # --- conversion -------------------------------------------------------------------
    def numpy(self):
        """A NumPy copy (or view on the CPU) of the values, outside the graph."""
        return self.xp.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        """NumPy reads the values (np.mean of a list of losses crashed inside NumPy; np.asarray gave objects)."""
        return np.asarray(self.numpy(), dtype)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device=None, dtype=None):
        """This tensor on another device and/or dtype; gradients flow back through the move."""
        return _ops.shape.To.apply(self, xp=_backend.get_backend(device) if device is not None else self.xp,
                                   dtype=dtype)

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    # --- autograd -----------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate gradients of this tensor into every leaf it depends on (see engine)."""
        engine.backward(self, grad)

    def detach(self):
        """The same values, cut from the graph (shares memory with ``self.data``)."""
        return Tensor._wrap(self.data, self.xp)

    def requires_grad_(self, flag=True):
        if flag and not is_float(self.xp, self.data):
            raise TypeError(f"only floating-point tensors can require grad, got {self.dtype}; write the values as "
                            f"floats (1.0, not 1) or pass dtype=\"float32\" (x.float() for a tensor you have)")
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep this (non-leaf) tensor's gradient in ``.grad`` after ``backward()``."""
        self._retains_grad = True
        return self

    def zero_grad(self):
        self.grad = None

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, g):
        """None, or an array of this tensor's shape on its backend: a list or another shape failed only in
        optimizer.step(), in NumPy's or torch's words, after Adam had already scaled its moments in place."""
        g = np.asarray(g) if isinstance(g, np.generic) else g   # NumPy's maths on 0-d arrays gives scalars
        if g is not None and not (isinstance(g, type(self.data)) and _backend.backend_of(g) is self.xp
                                  and tuple(g.shape) == self.shape):
            got = f"shape {tuple(g.shape)} on {_backend.device_name(_backend.backend_of(g))}" \
                if isinstance(g, np.ndarray) or _backend._is_torch_tensor(g) else type(g).__name__
            raise TypeError(f".grad must be None or an array of shape {self.shape} on {self.device}, got {got}; "
                            f"build it from the data, e.g. t.grad = t.xp.zeros_like(t.data)")
        self._grad = g

    # --- operators ----------------------------------------------------------------------
    def _lift(self, other):
        """Python/NumPy scalars stay scalars; arrays become constant Tensors on our device, in our dtype
        if we are floats (else in theirs: an integer tensor times [0.5, 0.5] was cut to integers)."""
        if isinstance(other, Tensor):
            return other
        if other is None:   # it became a NaN tensor: p -= p.grad before any backward filled p with NaN, silently
            raise TypeError("an operand is None (a .grad is None until backward() has reached it); give a number, "
                            "an array or a Tensor")
        if isinstance(other, (int, float, bool, np.generic)):
            return other.item() if isinstance(other, np.generic) else other
        return Tensor(other, device=self.xp, dtype=self.dtype if is_float(self.xp, self.data) else None)

    def __add__(self, other):
        return _ops.add(self, self._lift(other))

    def __radd__(self, other):
        return _ops.add(self._lift(other), self)

    def __sub__(self, other):
        return _ops.sub(self, self._lift(other))

    def __rsub__(self, other):
        return _ops.sub(self._lift(other), self)

    def __mul__(self, other):
        return _ops.mul(self, self._lift(other))

    def __rmul__(self, other):
        return _ops.mul(self._lift(other), self)

    def __truediv__(self, other):
        return _ops.div(self, self._lift(other))

    def __rtruediv__(self, other):
        return _ops.div(self._lift(other), self)

    def __pow__(self, exponent):
        return _ops.pow(self, self._lift(exponent))

    def __rpow__(self, base):
        return _ops.pow(self._lift(base), self)

    def __neg__(self):
        return _ops.neg(self)

    def __matmul__(self, other):
        return _ops.matmul(self, self._lift(other))

    def __rmatmul__(self, other):
        return _ops.matmul(self._lift(other), self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # ``p -= lr * p.grad`` under ``no_grad``: a leaf that requires grad (a parameter) is updated in place, as in
    # PyTorch (Python's fallback, p = p - ..., rebound the loop variable and left the model as it was). On every
    # other tensor ``x -= y`` stays ``x = x - y``, a new tensor that the graph records. A value on another device, or
    # one that does not broadcast to the parameter's shape, is refused in the words of ``p - y``, not the library's.
    def _in_place(self, other, update, op):
        other = self._lift(other)
        if self._ctx is not None or not self.requires_grad:
            return op(self, other)
        if engine.is_grad_enabled():
            raise OpError("an in-place update of a tensor that requires grad (a parameter) would not be recorded; "
                          "write it under md.no_grad(), e.g. p -= lr * p.grad, as in PyTorch")
        if isinstance(other, Tensor):
            if other.xp is not self.xp:
                raise ValueError(f"{op.__name__}: inputs live on different devices ({other.device} and {self.device}); "
                                 f"move them with .to(device) first")
            if (shape := broadcast_shape(op.__name__, self.shape, other.shape)) != self.shape:
                raise ShapeError(f"{op.__name__}: shapes {self.shape} and {other.shape} broadcast to {shape}, not to "
                                 f"the shape {self.shape} of the tensor updated in place; give a value of its shape")
            other = other.data
        update(self.data, other)
        engine.changed_in_place(self)
        return self

    def __iadd__(self, other):
        return self._in_place(other, operator.iadd, _ops.add)

    def __isub__(self, other):
        return self._in_place(other, operator.isub, _ops.sub)

    def __imul__(self, other):
        return self._in_place(other, operator.imul, _ops.mul)

    def __itruediv__(self, other):
        return self._in_place(other, operator.itruediv, _ops.div)

    # Comparisons give constant boolean tensors (masks); they are not differentiable.
    # == and != too, as in torch (they compared identity: np.mean(preds == y) was 0.0 for a perfect model)
    __gt__, __ge__, __lt__, __le__, __eq__, __ne__ = map(_comparison, (operator.gt, operator.ge, operator.lt,
                                                                       operator.le, operator.eq, operator.ne))
    eq = __eq__

    __hash__ = object.__hash__  # tensors are graph nodes, hashed by identity

    # --- methods that forward to ops (see minidl.autograd.ops for the maths) --------------
    def sum(self, axis=None, keepdims=False):
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops.max(self, axis, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return _ops.logsumexp(self, axis, keepdims)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def tanh(self):
        return _ops.tanh(self)

    def relu(self):
        return _ops.relu(self)

    def softmax(self, axis=-1):
        return _ops.softmax(self, axis)

    def log_softmax(self, axis=-1):
        return _ops.log_softmax(self, axis)

    def reshape(self, *shape):
        return _ops.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def permute(self, *axes):
        """The axes in the order ``axes`` (a full permutation, as one tuple or spread out); none: reversed."""
        return _ops.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    def transpose(self, *axes):
        """Two axes: those two swapped, as torch's ``transpose(-2, -1)`` (NumPy read (0, 1) of a matrix as the
        identity, silently, and so did two NumPy integers); else as ``permute``."""
        if len(axes) == 2 and all(isinstance(a, numbers.Integral) for a in axes):
            if not all(-self.ndim <= a < self.ndim for a in axes):
                raise ValueError(f"transpose{axes}: a tensor of shape {self.shape} has axes 0..{self.ndim - 1} "
                                 f"(or -{self.ndim}..-1)")
            order = list(range(self.ndim))
            order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
            axes = (tuple(order),)
        return self.permute(*axes)

    @property
    def T(self):
        return _ops.transpose(self)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def unsqueeze(self, axis):
        axis = _backend.normalise_axis(axis, self.ndim + 1)[0]
        return _ops.reshape(self, self.shape[:axis] + (1,) + self.shape[axis:])

    def squeeze(self, axis):
        axis = _backend.normalise_axis(axis, self.ndim)[0]
        if self.shape[axis] != 1:
            raise ValueError(f"squeeze: axis {axis} has size {self.shape[axis]}, not 1 (shape {self.shape})")
        return _ops.reshape(self, self.shape[:axis] + self.shape[axis + 1:])


# The ops build on this Tensor class and its methods call them, so the two cannot import each
# other: ``minidl.autograd`` imports the ops after this module and hands them over here.
_ops = None
engine._Tensor = Tensor   # the engine checks that gradients are arrays, not Tensors

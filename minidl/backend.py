"""Array backends: the small namespace (``xp``) that every op is written against.

minidl computes every gradient itself; the backend only stores arrays and runs
elementwise maths, reductions and matrix products. Two backends satisfy the same
interface:

* ``NumpyBackend``  -- NumPy arrays on the CPU (device ``"cpu"``, alias ``"numpy"``);
* ``TorchBackend``  -- PyTorch tensors used as plain arrays (device ``"torch"`` /
  ``"torch:cpu"`` on the CPU, ``"cuda"`` / ``"cuda:N"`` on a GPU). torch's own
  autograd is never used here.

Ops use Python operators (``a * b``, ``a @ b``, ``-a``, ``a ** p``, ``a > 0``) where
both libraries agree, and ``xp.<name>`` where they differ (``axis`` vs ``dim``,
``concatenate`` vs ``cat``, scatter-add, padding, random numbers).
"""
from __future__ import annotations

import abc
import numbers
import sys

import numpy as np

FLOAT_DTYPES = ("float32", "float64")
_DTYPE_NAMES = FLOAT_DTYPES + ("float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool")
_DEVICE_HELP = 'use "cpu" (NumPy), "torch" (PyTorch on the CPU) or "cuda" / "cuda:N" (PyTorch on a GPU)'


_NUMPY_NAMES = {}   # np.dtype -> its name, for NumpyBackend.dtype_name
_NUMPY_DTYPES = {}  # a dtype as given ("float32", np.float64, torch.float16) -> np.dtype, for NumpyBackend.dtype


def dtype_name_of(dtype):
    """The name ("float64") of a dtype given as a name, a NumPy type or dtype (np.float64, float) or a torch dtype:
    what every ``dtype=`` reads, so that np.float64 is taken wherever "float64" is, on both backends."""
    return np.dtype(dtype).name if isinstance(dtype, (type, np.dtype)) else str(dtype).replace("torch.", "")


def normalise_axis(axis, ndim):
    """Axis argument -> tuple of non-negative ints (``None`` means every axis); an axis out of
    range is an error, as in NumPy (it wrapped around: axis 2 of a 2-D tensor read axis 0). One axis may be any
    integer, np.int64(1) too (it was iterated: "'numpy.int64' object is not iterable"); ints come back."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (bool, np.bool_)) or isinstance(axis, (tuple, list)) and any(
            isinstance(a, (bool, np.bool_)) for a in axis):   # True read as axis 1
        raise IndexError(f"axis={axis!r} is not an axis; give an int, or a tuple of ints")
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    wrong = [a for a in axis if ndim and not -ndim <= a < ndim]
    if wrong:
        raise IndexError(f"axis {wrong[0]} is out of range for a {ndim}-D tensor (axes {-ndim} to {ndim - 1})")
    return tuple(int(a) % ndim if ndim else int(a) for a in axis)


class Backend(abc.ABC):
    """The contract: every name an op or a layer may use on ``xp``. Both backends implement all
    of it (``tests/autograd/test_backend_agreement.py`` checks that they have exactly these
    public names), and nothing above this module asks which backend it has.

    Arrays are the backend's own (NumPy arrays, torch tensors); ``dtype`` arguments are names
    ("float32"). Besides these methods, ops use Python operators (+, *, @, comparisons,
    indexing) on the arrays, which both libraries share. A trailing underscore means in place.
    """

    name: str                      # "numpy" or "torch"
    device: str                    # "cpu", or "cuda:N"
    negative_step_slices: bool     # whether ``a[::-1]`` works on its arrays

    # one backend object per device: copies and pickles of arrays' owners share it
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return get_backend, (device_name(self),)

    # creation and conversion
    @abc.abstractmethod
    def dtype(self, name): """The library's dtype object for a name such as "float32"."""
    @abc.abstractmethod
    def dtype_name(self, a): """The dtype of ``a`` as a name ("float32")."""
    @abc.abstractmethod
    def asarray(self, data, dtype=None): """``data`` as an array on this device, without a copy when it already is one."""
    @abc.abstractmethod
    def array(self, data, dtype=None): """Like ``asarray`` but always a fresh copy."""
    @abc.abstractmethod
    def to_numpy(self, a): """A NumPy array with ``a``'s values."""
    @abc.abstractmethod
    def astype(self, a, dtype): """``a`` in ``dtype`` (no copy when it is already)."""
    @abc.abstractmethod
    def copy(self, a): """A fresh copy of ``a``."""
    @abc.abstractmethod
    def owns(self, a): """Whether ``a`` is writable and has memory of its own (no view of another array)."""
    @abc.abstractmethod
    def zeros(self, shape, dtype="float32"): ...
    @abc.abstractmethod
    def ones(self, shape, dtype="float32"): ...
    @abc.abstractmethod
    def zeros_like(self, a): ...
    @abc.abstractmethod
    def ones_like(self, a): ...
    @abc.abstractmethod
    def arange(self, n, dtype="int64"): ...
    @abc.abstractmethod
    def size(self, a): """The number of elements of ``a``."""
    @abc.abstractmethod
    def wrap(self, a): """What an op returned, as an array (NumPy reductions give scalars)."""

    # elementwise maths
    @abc.abstractmethod
    def exp(self, a): ...
    @abc.abstractmethod
    def log(self, a): ...
    @abc.abstractmethod
    def log1p(self, a): ...
    @abc.abstractmethod
    def sqrt(self, a): ...
    @abc.abstractmethod
    def abs(self, a): ...
    @abc.abstractmethod
    def sign(self, a): ...
    @abc.abstractmethod
    def tanh(self, a): ...
    @abc.abstractmethod
    def sigmoid(self, a): ...
    @abc.abstractmethod
    def erf(self, a): ...
    @abc.abstractmethod
    def maximum(self, a, b): ...
    @abc.abstractmethod
    def where(self, cond, a, b): """``a`` where ``cond``, else ``b``; either may be a Python number."""
    @abc.abstractmethod
    def all_finite(self, a): """True when no element of ``a`` is NaN or infinite."""
    @abc.abstractmethod
    def exp_(self, a): ...
    @abc.abstractmethod
    def fill_where_(self, a, cond, value): """``a[cond] = value``, ``cond`` broadcast to ``a``."""
    @abc.abstractmethod
    def ge_(self, a, value): """``a = (a >= value)`` as 1.0 / 0.0 in ``a``'s dtype."""
    @abc.abstractmethod
    def add_scaled_(self, y, alpha, a, b=None): """``y += alpha · a (· b)``."""

    # reductions and layout
    @abc.abstractmethod
    def sum(self, a, axis=None, keepdims=False): ...
    @abc.abstractmethod
    def max(self, a, axis=None, keepdims=False): ...
    @abc.abstractmethod
    def transpose(self, a, axes): ...
    @abc.abstractmethod
    def swap_last(self, a): """``a`` with its last two axes swapped (a view)."""
    @abc.abstractmethod
    def broadcast_to(self, a, shape): ...
    @abc.abstractmethod
    def concat(self, arrays, axis=0): ...
    @abc.abstractmethod
    def stack(self, arrays, axis=0): ...
    @abc.abstractmethod
    def pad(self, a, pad_width, value=0.0): """One ``(before, after)`` pair per axis, as in ``np.pad``."""

    # indexing
    @abc.abstractmethod
    def index_add(self, target, index, values): """``target[index] += values``, repeated indices summed."""
    @abc.abstractmethod
    def add_rows(self, target, ids, values): """``target[ids[i]] += values[i]`` for a (V, E) target."""
    @abc.abstractmethod
    def index_array(self, index): """An index array (e.g. a list of ints) in the form this library indexes with."""
    @abc.abstractmethod
    def take_last(self, a, idx): """``a[..., idx[...]]``: one entry of the last axis per position."""
    @abc.abstractmethod
    def add_last(self, a, idx, values): """``a[..., idx[...]] += values``, one entry per position."""

    # random numbers
    @abc.abstractmethod
    def manual_seed(self, seed): """Re-seed this backend's default generator."""
    @abc.abstractmethod
    def new_generator(self, seed): """A fresh generator seeded with ``seed``."""
    @abc.abstractmethod
    def rand(self, shape, dtype="float32", generator=None): ...
    @abc.abstractmethod
    def randn(self, shape, dtype="float32", generator=None): ...

    # int8
    @abc.abstractmethod
    def int8_linear_pack(self, qweight, scale, bias): """Prepare ``int8_linear``'s weights, once."""
    @abc.abstractmethod
    def int8_linear(self, x, packed): """``x @ (q · scale) + b`` with weights from ``int8_linear_pack``."""

    # fused attention
    @abc.abstractmethod
    def attention_kernel(self, q, k, v, blocked, causal):
        """(out, logsumexp) of softmax(q kᵀ/√d, keys masked) v from the backend's own fused
        kernel -- q, k, v (B, h, T, d), ``blocked`` None or (B, T) True on keys no query may
        see; out (B, h, T, d), logsumexp (B, h, T) -- or None where it has none (then
        ``ops.scaled_dot_product_attention`` runs its array path)."""
    @abc.abstractmethod
    def attention_kernel_backward(self, grad, q, k, v, blocked, causal, out, logsumexp):
        """(dq, dk, dv) of ``attention_kernel``, from its out and logsumexp."""


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"
    negative_step_slices = True

    def __init__(self):
        self.generator = np.random.default_rng(0)

    def __repr__(self):
        return "NumpyBackend()"

    # --- creation and conversion -------------------------------------------------
    def dtype(self, name):
        try:   # a dict lookup: dtype_name_of and np.dtype cost about 0.4 us on every zeros/asarray with a dtype
            return _NUMPY_DTYPES[name]
        except KeyError:
            return _NUMPY_DTYPES.setdefault(name, np.dtype(dtype_name_of(name)))

    def dtype_name(self, a):
        dtype = a.dtype   # str(dtype) costs NumPy about 2 us, a dict lookup of its name 0.07 us
        return _NUMPY_NAMES.get(dtype) or _NUMPY_NAMES.setdefault(dtype, str(dtype))

    def asarray(self, data, dtype=None):
        if _is_torch_tensor(data):
            data = data.detach().cpu().numpy()
        return np.asarray(data, dtype=None if dtype is None else self.dtype(dtype))

    def array(self, data, dtype=None):
        """Like ``asarray`` but always a fresh copy (what ``Tensor(data)`` stores)."""
        if _is_torch_tensor(data):
            data = data.detach().cpu().numpy()
        return np.array(data, dtype=None if dtype is None else self.dtype(dtype))

    def to_numpy(self, a):
        return a

    def wrap(self, a):
        return a if isinstance(a, np.ndarray) else np.asarray(a)

    def astype(self, a, dtype):
        return a.astype(dtype, copy=False)

    def copy(self, a):
        return a.copy()

    def owns(self, a):
        return a.base is None and a.flags.writeable

    def zeros(self, shape, dtype="float32"):
        return np.zeros(shape, dtype=self.dtype(dtype))

    def ones(self, shape, dtype="float32"):
        return np.ones(shape, dtype=self.dtype(dtype))

    zeros_like = staticmethod(np.zeros_like)
    ones_like = staticmethod(np.ones_like)

    def arange(self, n, dtype="int64"):
        return np.arange(n, dtype=self.dtype(dtype))

    def size(self, a):
        return a.size

    # --- elementwise ---------------------------------------------------------------
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    tanh = staticmethod(np.tanh)
    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)

    def sigmoid(self, a):
        # σ(a) = ½ + ½·tanh(a/2): never overflows, and one tanh is ~10x faster than the
        # logaddexp form. Far in the negative tail (a < −17 in float32) it returns 0 where
        # σ is < 4e-8: an absolute error no model notices (the losses use their own formulas).
        if a.dtype.kind != "f":   # integers: NumPy's float64 (the engine then gives the default dtype)
            a = a.astype(np.float64)
        out = np.multiply(a, 0.5, out=np.empty_like(a))  # an array even for 0-d input
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out

    def erf(self, a):
        from scipy.special import erf  # NumPy has no erf; SciPy's is exact to rounding

        return erf(a)

    def all_finite(self, a):
        return bool(np.isfinite(a).all())

    # --- reductions ----------------------------------------------------------------
    def sum(self, a, axis=None, keepdims=False):
        return np.sum(a, axis=axis, keepdims=keepdims)

    def max(self, a, axis=None, keepdims=False):
        return np.max(a, axis=axis, keepdims=keepdims)

    # --- shapes --------------------------------------------------------------------
    transpose = staticmethod(np.transpose)

    def swap_last(self, a):
        return np.swapaxes(a, -1, -2)

    # --- in place, for the large temporaries of fused ops (no second full-size array) ---
    def exp_(self, a):
        return np.exp(a, out=a) if isinstance(a, np.ndarray) else np.exp(a)   # 0-d maths gives NumPy scalars

    def fill_where_(self, a, cond, value):
        np.copyto(a, value, where=cond)
        return a

    def ge_(self, a, value):
        """a = (a >= value) as 1.0 / 0.0 in a's own dtype, in place (no boolean array, no cast)."""
        return np.greater_equal(a, value, out=a)

    def add_scaled_(self, y, alpha, a, b=None):
        """y += alpha · a (· b), in place: optimizer updates without a chain of temporaries."""
        t = a * alpha if b is None else a * b
        if b is not None:
            t *= alpha
        y += t
        return y

    def broadcast_to(self, a, shape):
        return np.broadcast_to(a, shape)

    def concat(self, arrays, axis=0):
        return np.concatenate(arrays, axis=axis)

    stack = staticmethod(np.stack)

    def pad(self, a, pad_width, value=0.0):
        """``pad_width``: one ``(before, after)`` pair per axis, as in ``np.pad``."""
        return np.pad(a, pad_width, mode="constant", constant_values=value)

    def index_add(self, target, index, values):
        """``target[index] += values`` with repeated indices summed (in place)."""
        np.add.at(target, index, values)
        return target

    def add_rows(self, target, ids, values):
        """``target[ids[i]] += values[i]`` for a (V, E) target, ids (N,), values (N, E)."""
        np.add.at(target, ids, values)
        return target

    def index_array(self, index):
        return np.asarray(index)

    def take_last(self, a, idx):
        """``a[..., idx[...]]``: one entry of the last axis per position; idx has a's shape minus the last axis."""
        rows = a.reshape(-1, a.shape[-1])
        return rows[np.arange(len(rows)), idx.reshape(-1)].reshape(idx.shape)

    def add_last(self, a, idx, values):
        """``a[..., idx[...]] += values`` in place (one entry per position, no repeats)."""
        rows = a.reshape(-1, a.shape[-1])  # a view: a is contiguous (made by an op)
        rows[np.arange(len(rows)), idx.reshape(-1)] += np.reshape(values, -1)
        return a

    # --- random numbers --------------------------------------------------------------
    def manual_seed(self, seed):
        self.generator = np.random.default_rng(seed)

    def new_generator(self, seed):
        return np.random.default_rng(seed)

    def rand(self, shape, dtype="float32", generator=None):
        return (generator or self.generator).random(shape, dtype=self.dtype(dtype))

    def randn(self, shape, dtype="float32", generator=None):
        return (generator or self.generator).standard_normal(shape, dtype=self.dtype(dtype))

    # --- int8 linear -------------------------------------------------------------------
    def int8_linear_pack(self, qweight, scale, bias):
        """Prepare y = x @ (q · scale) + b for ``int8_linear``, once per set of weights:
        q int8 (D_in, D_out), scale float32 (D_out,), bias (D_out,) or None.

        NumPy has no int8 matrix product (an integer ``@`` runs without BLAS, many times
        slower than float32), so the fastest honest path is BLAS on q · scale, expanded
        here once: float32 speed; int8 saves disk, not time."""
        return qweight.astype(np.float32) * scale, bias

    def int8_linear(self, x, packed):
        """x (..., D_in) -> y (..., D_out) = x @ (q · scale) + b, ``packed`` by ``int8_linear_pack``."""
        weight, bias = packed
        # one (rows, D_in) @ (D_in, D_out) BLAS call, not NumPy's one per leading index
        y = x.reshape(-1, x.shape[-1]) @ weight.astype(x.dtype, copy=False)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[1])

    def attention_kernel(self, q, k, v, blocked, causal):
        """None: NumPy has no fused attention; the op's array path is NumPy's."""
        return None

    def attention_kernel_backward(self, grad, q, k, v, blocked, causal, out, logsumexp):
        raise NotImplementedError("the numpy backend has no fused attention kernel")


def _torch_function(name):
    """A TorchBackend method that applies ``torch.<name>`` to its array (torch is imported lazily)."""
    def method(self, a):
        return getattr(self.torch, name)(a)
    method.__name__ = name
    return method


class TorchBackend(Backend):
    name = "torch"
    negative_step_slices = False   # torch tensors refuse a[::-1]

    def __init__(self, device="cpu"):
        import torch

        self.torch = torch
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(0)

    def __repr__(self):
        return f"TorchBackend({self.device!r})"

    # --- creation and conversion -------------------------------------------------
    def dtype(self, name):
        return getattr(self.torch, dtype_name_of(name))

    def dtype_name(self, a):
        return str(a.dtype).replace("torch.", "")

    def asarray(self, data, dtype=None):
        torch = self.torch
        dt = None if dtype is None else self.dtype(dtype)
        if isinstance(data, torch.Tensor):
            return data.to(device=self.device, dtype=dt or data.dtype)
        data = np.asarray(data)
        if not data.flags.writeable or any(s < 0 for s in data.strides):
            data = data.copy()  # torch wants writable memory and no negative strides (x[::-1])
        return torch.as_tensor(data, device=self.device, dtype=dt)

    def array(self, data, dtype=None):
        """Like ``asarray`` but always a fresh copy (what ``Tensor(data)`` stores)."""
        out = self.asarray(data, dtype)
        return out.clone() if out is data or _shares_memory(out, data) else out

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def wrap(self, a):
        return a

    def astype(self, a, dtype):
        return a.to(self.dtype(dtype))

    def copy(self, a):
        return a.clone()

    def owns(self, a):
        return a._base is None

    def zeros(self, shape, dtype="float32"):
        return self.torch.zeros(shape, dtype=self.dtype(dtype), device=self.device)

    def ones(self, shape, dtype="float32"):
        return self.torch.ones(shape, dtype=self.dtype(dtype), device=self.device)

    def zeros_like(self, a):
        return self.torch.zeros_like(a)

    def ones_like(self, a):
        return self.torch.ones_like(a)

    def arange(self, n, dtype="int64"):
        return self.torch.arange(n, dtype=self.dtype(dtype), device=self.device)

    def size(self, a):
        return a.numel()

    # --- elementwise ---------------------------------------------------------------
    exp, log, log1p, sqrt, abs, sign, tanh, sigmoid, erf = (
        _torch_function(name) for name in ("exp", "log", "log1p", "sqrt", "abs", "sign", "tanh", "sigmoid", "erf"))

    def maximum(self, a, b):
        return self.torch.maximum(*self._tensors(a, b))

    def where(self, cond, a, b):
        return self.torch.where(cond, *self._tensors(a, b))

    def _tensors(self, a, b):
        """torch.maximum/where want tensors; lift a Python scalar to the dtype it and the other
        promote to (the other's own dtype cut 1.5 to 1 beside an integer tensor)."""
        torch = self.torch
        if not isinstance(a, torch.Tensor):   # result_type costs 1.5 us: only for integer and bool tensors
            a = torch.as_tensor(a, dtype=b.dtype if b.is_floating_point() else torch.result_type(b, a), device=b.device)
        if not isinstance(b, torch.Tensor):
            b = torch.as_tensor(b, dtype=a.dtype if a.is_floating_point() else torch.result_type(a, b), device=a.device)
        return a, b

    def all_finite(self, a):
        return bool(self.torch.isfinite(a).all())

    # --- reductions ----------------------------------------------------------------
    def sum(self, a, axis=None, keepdims=False):
        if axis is None and not keepdims:
            return a.sum()
        dims = normalise_axis(axis, a.ndim)   # torch reads dim=() as every axis; NumPy's axis=() reduces none
        return a.sum(dim=dims, keepdim=keepdims) if dims else a.clone()

    def max(self, a, axis=None, keepdims=False):
        if axis is None and not keepdims:
            return a.max()
        dims = normalise_axis(axis, a.ndim)
        return self.torch.amax(a, dim=dims, keepdim=keepdims) if dims else a.clone()

    # --- shapes --------------------------------------------------------------------
    def transpose(self, a, axes):
        return a.permute(*axes)

    def swap_last(self, a):
        return a.transpose(-1, -2)

    # --- in place, for the large temporaries of fused ops (no second full-size array) ---
    def exp_(self, a):
        return a.exp_()

    def fill_where_(self, a, cond, value):
        return a.masked_fill_(cond, value)

    def ge_(self, a, value):
        """a = (a >= value) as 1.0 / 0.0 in a's own dtype, in place (no boolean array, no cast)."""
        return a.ge_(value)

    def add_scaled_(self, y, alpha, a, b=None):
        """y += alpha · a (· b), in place: optimizer updates without a chain of temporaries."""
        return y.add_(a, alpha=alpha) if b is None else y.addcmul_(a, b, value=alpha)

    def broadcast_to(self, a, shape):
        return self.torch.broadcast_to(a, shape)

    def concat(self, arrays, axis=0):
        return self.torch.cat(list(arrays), dim=axis)

    def stack(self, arrays, axis=0):
        return self.torch.stack(list(arrays), dim=axis)

    def pad(self, a, pad_width, value=0.0):
        # torch.nn.functional.pad lists (before, after) from the LAST axis backwards.
        flat = [n for pair in reversed(pad_width) for n in pair]
        return self.torch.nn.functional.pad(a, flat, mode="constant", value=value)

    def index_add(self, target, index, values):
        """``target[index] += values`` with repeated indices summed (in place).

        torch's accumulate-by-index wants plain index tensors, so any index (slices
        mixed with arrays, masks) is first turned into flat positions by applying it
        to ``arange(target.numel())``.
        """
        positions = self.torch.arange(target.numel(), device=target.device).reshape(target.shape)[index]
        target.view(-1).index_add_(0, positions.reshape(-1), values.reshape(-1))
        return target

    def add_rows(self, target, ids, values):
        """``target[ids[i]] += values[i]`` for a (V, E) target, ids (N,), values (N, E)."""
        target.index_add_(0, ids, values)
        return target

    def index_array(self, index):
        return self.asarray(index)

    def take_last(self, a, idx):
        """``a[..., idx[...]]``: one entry of the last axis per position; idx has a's shape minus the last axis."""
        return self.torch.gather(a, -1, idx.unsqueeze(-1)).squeeze(-1)

    def add_last(self, a, idx, values):
        """``a[..., idx[...]] += values`` in place (one entry per position, no repeats)."""
        return a.scatter_add_(-1, idx.unsqueeze(-1), values.unsqueeze(-1))

    # --- random numbers --------------------------------------------------------------
    def manual_seed(self, seed):
        self.generator.manual_seed(seed)

    def new_generator(self, seed):
        g = self.torch.Generator(device=self.device)
        g.manual_seed(seed)
        return g

    def rand(self, shape, dtype="float32", generator=None):
        return self.torch.rand(shape, dtype=self.dtype(dtype), device=self.device,
                               generator=generator or self.generator)

    def randn(self, shape, dtype="float32", generator=None):
        return self.torch.randn(shape, dtype=self.dtype(dtype), device=self.device,
                                generator=generator or self.generator)

    # --- int8 linear -------------------------------------------------------------------
    def int8_linear_pack(self, qweight, scale, bias):
        """Prepare y = x @ (q · scale) + b for ``int8_linear``, once per set of weights:
        q int8 (D_in, D_out), scale float32 (D_out,), bias (D_out,) or None.

        On the CPU: PyTorch's quantized int8 GEMM (fbgemm / oneDNN), used as a plain array
        function; here q is packed into its blocked layout with the same scales and zero
        points 0, so the kernel multiplies by exactly minidl's q · scale. Where torch has no
        such kernel (CUDA), q · scale is expanded once and multiplied in float, as on NumPy.
        """
        torch = self.torch
        kernel = self._int8_kernel()
        if kernel is None:
            return qweight.to(torch.float32) * scale, bias
        import warnings

        engine, _ = kernel
        scale = scale.to(torch.float32)  # a float buffer: float64 after model.to(dtype="float64")
        previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine  # the packed layout is the engine's; calls need no engine set
        try:
            with warnings.catch_warnings():
                # quantized tensors are deprecated since torch 2.13, yet still the only way into these kernels
                warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
                weight = torch.quantize_per_channel(qweight.T.to(torch.float32) * scale[:, None], scale.double(),
                                                    torch.zeros_like(scale, dtype=torch.int64), 0, torch.qint8)
            return torch.ops.quantized.linear_prepack(weight, None if bias is None else bias.to(torch.float32))
        finally:
            torch.backends.quantized.engine = previous

    def int8_linear(self, x, packed):
        """x (..., D_in) -> y (..., D_out) = x @ (q · scale) + b, ``packed`` by ``int8_linear_pack``.

        The int8 GEMM quantises x per tensor on the fly (uint8, its own min/max range), so y
        differs from x @ (q · scale) + b by at most s_x / 2 · Σ_i |q_ic · scale_c| per output,
        s_x = (max(x, 0) − min(x, 0)) / 255 (/ 127 where 7-bit activations are used)."""
        kernel = self._int8_kernel()
        if kernel is None:
            weight, bias = packed
            y = x @ weight.to(x.dtype)
            return y if bias is None else y.add_(bias)
        y = self.torch.ops.quantized.linear_dynamic(x.to(self.torch.float32), packed, kernel[1])
        return y.to(x.dtype)

    # --- fused attention ---------------------------------------------------------------
    def attention_kernel(self, q, k, v, blocked, causal):
        """(out, logsumexp) from PyTorch's fused CPU attention (FlashAttention's blocking over
        keys, online softmax, one pass per query block, its threads), used as an array
        function; None on CUDA (the Triton kernel's place) and for dtypes it lacks."""
        torch = self.torch
        if q.device.type != "cpu" or q.dtype not in (torch.float32, torch.float64):
            return None
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, causal, attn_mask=self._additive_mask(blocked, q.dtype), scale=q.shape[-1] ** -0.5)

    def attention_kernel_backward(self, grad, q, k, v, blocked, causal, out, logsumexp):
        return self.torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad.contiguous(), q, k, v, out, logsumexp, 0.0, causal,
            attn_mask=self._additive_mask(blocked, q.dtype), scale=q.shape[-1] ** -0.5)

    def _additive_mask(self, blocked, dtype):
        """(B, T) booleans, True on keys to hide -> (B, 1, 1, T) 0 / −∞ added to the scores; None stays None."""
        if blocked is None:
            return None
        return self.torch.zeros(blocked.shape, dtype=dtype, device=blocked.device).masked_fill_(
            blocked, float("-inf"))[:, None, None, :]

    def _int8_kernel(self):
        """(engine, reduce_range) of torch's int8 GEMM for this device, or None (CUDA: none).

        engine: torch's default "x86" (fbgemm), but oneDNN on CPUs with AMX tiles: there, on
        the teacher's (8192, 128) @ (128, 256), it measured 2.4× float32 against fbgemm's 1.5×
        (1.2-1.4× against 1.1× at 32768 rows, where writing the float output dominates).
        reduce_range: 7-bit activations, so u8·s8 pair sums cannot saturate the int16
        intermediates of CPUs without VNNI (what ``torch.ao`` does there too)."""
        if not hasattr(self, "_int8_kernel_choice"):
            torch = self.torch

            def cpu_has(feature):  # torch.cpu's private feature checks; False if one disappears
                return getattr(torch.cpu, f"_is_{feature}_supported", lambda: False)()

            preferred = ["x86", "fbgemm", "onednn", "qnnpack"]
            if cpu_has("amx_tile"):
                preferred.insert(0, "onednn")
            engines = [e for e in preferred if e in torch.backends.quantized.supported_engines]
            self._int8_kernel_choice = ((engines[0], not cpu_has("vnni")) if self.device == "cpu" and engines
                                        else None)
        return self._int8_kernel_choice


def _shares_memory(tensor, data):
    """Does a CPU torch tensor view the memory of ``data`` (a NumPy array or a torch tensor)?"""
    if tensor.device.type != "cpu" or tensor.numel() == 0:
        return False
    if isinstance(data, np.ndarray):
        return data.size > 0 and np.shares_memory(tensor.numpy(), data)
    return _is_torch_tensor(data) and tensor.untyped_storage().data_ptr() == data.untyped_storage().data_ptr()


def _is_torch_tensor(x):
    torch = sys.modules.get("torch")  # never imports torch: a tensor exists only if torch is loaded
    return torch is not None and isinstance(x, torch.Tensor)


NUMPY = NumpyBackend()


_TORCH_BACKENDS = {}


def _torch_backend(device):
    if device not in _TORCH_BACKENDS:
        try:
            import torch
        except ImportError as e:  # pragma: no cover - torch is a declared dependency
            raise RuntimeError(f"device {device!r} needs PyTorch: pip install torch") from e
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU; {_DEVICE_HELP}")
        _TORCH_BACKENDS[device] = TorchBackend(device)
    return _TORCH_BACKENDS[device]


def get_backend(device=None):
    """Device string -> backend instance. ``None`` means the NumPy CPU backend."""
    if device is None or isinstance(device, NumpyBackend):
        return NUMPY
    if isinstance(device, TorchBackend):
        return device
    name = str(device)
    if name in ("cpu", "numpy"):
        return NUMPY
    if name in ("torch", "torch:cpu"):
        return _torch_backend("cpu")
    if name == "cuda":
        return _torch_backend("cuda:0")
    if name.startswith("cuda:") and name[5:].isdigit():
        return _torch_backend(name)
    if (dtype := dtype_name_of(device)) in _DTYPE_NAMES:   # x.to("float64"), torch's x.to(torch.float64)
        raise ValueError(f"{dtype!r} is a dtype, not a device (in Python: x.to(dtype={dtype!r})): {_DEVICE_HELP}")
    raise ValueError(f"unknown device {name!r}: {_DEVICE_HELP}")


def backend_of(array):
    """The backend that owns ``array`` (a NumPy array or a torch tensor)."""
    if isinstance(array, np.ndarray):
        return NUMPY
    if _is_torch_tensor(array):
        return _torch_backend("cpu" if array.device.type == "cpu" else f"cuda:{array.device.index or 0}")
    raise TypeError(f"expected a NumPy array or a torch tensor, got {type(array).__name__}")


def device_name(xp):
    """Canonical device string of a backend (what ``Tensor.device`` reports)."""
    if xp is NUMPY:
        return "cpu"
    return "torch" if xp.device == "cpu" else xp.device


def rng_state():
    """(NumPy's generator state, {"rng.torch.<device>": state array} for each torch device in
    use): what a checkpoint stores so that a resumed run draws the same random numbers."""
    torch_states = {f"rng.torch.{device}": xp.generator.get_state().numpy() for device, xp in _TORCH_BACKENDS.items()}
    return NUMPY.generator.bit_generator.state, torch_states


def set_rng_state(numpy_state, arrays):
    """Restore what ``rng_state`` returned (``arrays`` may hold other entries too)."""
    NUMPY.generator.bit_generator.state = numpy_state
    for name, state in arrays.items():
        if name.startswith("rng.torch."):
            xp = get_backend("torch" if name.endswith("cpu") else name[len("rng.torch."):])
            xp.generator.set_state(xp.torch.from_numpy(state.copy()))


def manual_seed(seed):
    """Seed every backend's default generator (weight init, dropout, random tensors)."""
    NUMPY.manual_seed(seed)
    for xp in _TORCH_BACKENDS.values():
        xp.manual_seed(seed)

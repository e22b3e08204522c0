"""``Module`` and ``Parameter``: the containers every layer and model is built from.

A ``Module`` owns named ``Parameter``s (trainable tensors), named sub-``Module``s and
named buffers (tensors that are saved but not trained, e.g. a pruning mask). All three
are registered automatically when assigned as attributes, in assignment order::

    class MLP(Module):
        def __init__(self):
            super().__init__()
            self.hidden = Linear(2, 16)     # sub-module "hidden"
            self.out = Linear(16, 2)        # sub-module "out"

        def forward(self, x):               # model(x) calls forward(x)
            return self.out(minidl.relu(self.hidden(x)))

    dict(MLP().named_parameters()).keys()   # hidden.weight, hidden.bias, out.weight, out.bias

Checkpoints are ``.npz`` archives of the state dict (name -> array): readable from any
NumPy program, written atomically, and loaded without pickle, so opening a checkpoint
someone sent you cannot run their code. Boolean buffers (pruning masks) are stored packed,
1 bit per entry (``pack_bool_arrays``), and unpacked again by ``load_state_dict``.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .. import backend as _backend
from ..errors import MinidlError
from ..autograd.tensor import Tensor, is_float, get_default_dtype
from ..io import (CheckpointError, check_replaceable, is_npz, read_npz,  # noqa: F401 (CheckpointError re-exported)
                  write_npz)


# a boolean array ``name`` is stored as name + _BITS (np.packbits of it, flattened) and name + _BITS_SHAPE
_BITS, _BITS_SHAPE = ".__bits__", ".__bits_shape__"


class StateDictError(MinidlError, ValueError):
    """A state dict whose names or shapes do not fit the model; the message lists every problem."""


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""
    missing_keys: list
    unexpected_keys: list


class Parameter(Tensor):
    """A tensor that a ``Module`` owns and an optimizer updates: a floating-point leaf
    with ``requires_grad=True`` (set it to False to freeze the parameter).

    The data is copied. A floating-point ``Tensor`` keeps its device and dtype; other
    data (lists, NumPy arrays, integers) gets the default dtype unless ``dtype=`` says
    otherwise.
    """

    def __init__(self, data, requires_grad=True, device=None, dtype=None):
        super().__init__(data, device=device, dtype=dtype)   # (a Tensor keeps its dtype there)
        if not is_float(self.xp, self.data):
            if dtype is not None:
                raise TypeError(f"a Parameter holds floating-point values, got dtype={dtype!r}")
            self.data = self.xp.astype(self.data, get_default_dtype())
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers and models: subclass it, call ``super().__init__()`` first,
    assign ``Parameter``s and sub-modules as attributes, and write ``forward``."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these registries to exist already
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    # --- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        if self.__dict__.get("_parameters") is None:  # Module.__init__ has not run yet
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"cannot assign {name!r} before Module.__init__() ran: call "
                                     f"super().__init__() first in {type(self).__name__}.__init__")
            object.__setattr__(self, name, value)
            return
        _refuse_unregistered(name, value)
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._parameters:
            # e.g. `self.weight = self.weight * 2` would silently stop training the weight
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r}: wrap it "
                                f"in Parameter(...), or change the values in place via .data")
            del self._parameters[name]
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to sub-module {name!r} "
                                f"(a Module or None expected)")
            del self._modules[name]
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(value).__name__}")
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)

    def register_buffer(self, name, tensor):
        """Keep ``tensor`` (not trained, no gradient) with the module: it moves with ``to()``
        and is saved in the state dict. Assign ``self.<name> = new_tensor`` to replace it."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ "
                                 f"before register_buffer({name!r}, ...)")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"{name!r} is already a parameter or sub-module of {type(self).__name__}")
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    # --- running ----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def train(self, mode=True):
        """Training mode (dropout active) for this module and every sub-module; returns self."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout off): ``train(False)``."""
        return self.train(False)

    # --- walking the tree -----------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("" by default) and every descendant,
        parents before children; a module reachable twice is listed once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, m) for child, m in module._modules.items()]
            stack.extend(reversed(children))  # reversed: pop in assignment order

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def modules(self):
        return (module for _, module in self.named_modules())

    def _named_tensors(self, registries):
        """(dotted name, tensor) from the given registries of every module; a tensor shared
        by two modules (tied weights) is listed once, under its first name."""
        seen = set()
        for module_name, module in self.named_modules():
            for registry in registries:
                for name, tensor in getattr(module, registry).items():
                    if tensor is None or id(tensor) in seen:
                        continue
                    seen.add(id(tensor))
                    yield (f"{module_name}.{name}" if module_name else name), tensor

    def named_parameters(self):
        """("layer.0.weight"-style dotted name, Parameter) for every parameter, frozen ones included."""
        return self._named_tensors(("_parameters",))

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        return self._named_tensors(("_buffers",))

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def num_parameters(self, trainable_only=False):
        """How many numbers the parameters hold (only those with requires_grad, if asked)."""
        return sum(p.size() for p in self.parameters() if p.requires_grad or not trainable_only)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # --- devices and dtypes ---------------------------------------------------------------
    def to(self, device=None, dtype=None):
        """Move every parameter and buffer to ``device`` and/or floating ``dtype``, in place.

        The Parameter objects stay the same (an optimizer built before the move keeps
        updating them); only their arrays change. Gradients are dropped, since they
        belong to the old arrays. Integer buffers keep their dtype. Returns self.
        """
        dtype = None if dtype is None else _backend.dtype_name_of(dtype)   # np.float64 as "float64"
        if dtype is not None and dtype not in _backend.FLOAT_DTYPES:
            raise ValueError(f"to(dtype=...): expected one of {_backend.FLOAT_DTYPES}, got {dtype!r}")
        target = _backend.get_backend(device) if device is not None else None
        for _, tensor in self._named_tensors(("_parameters", "_buffers")):
            xp = target or tensor.xp
            array = tensor.data
            if xp is not tensor.xp:
                # a copy: to_numpy / from_numpy would alias the old array, which someone may still hold
                array = xp.array(array)
            if dtype is not None and is_float(tensor.xp, tensor.data):
                array = xp.astype(array, dtype)
            tensor.data, tensor.xp, tensor.grad = array, xp, None
        return self

    # --- state ----------------------------------------------------------------------------
    def state_dict(self):
        """{dotted name: NumPy array copy} of every parameter, then buffer, module by module."""
        return {name: np.array(t.numpy(), copy=True)
                for name, t in self._named_tensors(("_parameters", "_buffers"))}

    def load_state_dict(self, state, strict=True):
        """Copy the arrays of ``state`` (NumPy arrays, Tensors or torch tensors) into the
        parameters and buffers, converted to each one's device and dtype. Boolean arrays packed
        to bits (``pack_bool_arrays``, as ``save`` writes them) are unpacked first.

        Everything is checked before anything is copied, and one ``StateDictError``
        lists every problem: missing keys, unexpected keys (both only when
        ``strict``) and shape mismatches (always). Returns ``LoadResult(missing_keys,
        unexpected_keys)``. Gradients are dropped.
        """
        if not hasattr(state, "items"):   # a path, a module, a list: not {name: array}
            raise TypeError(f"load_state_dict takes a dict of arrays (another model's .state_dict()), got "
                            f"{type(state).__name__}; model.load(path) reads a file")
        state = unpack_bool_arrays(state)
        own = dict(self._named_tensors(("_parameters", "_buffers")))
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        mismatched = [(name, _shape_of(state[name]), own[name].shape)
                      for name in own if name in state and _shape_of(state[name]) != own[name].shape]
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(_describe_problems(type(self).__name__, missing, unexpected, mismatched,
                                                    strict))
        converted = {}   # all first: a value that cannot be converted left the model half old, half new
        for name, tensor in own.items():
            if name in state:
                value = state[name]
                value = value.data if isinstance(value, Tensor) else value
                try:   # a copy: if the model shared the caller's arrays, an optimizer step would change them
                    converted[name] = tensor.xp.array(value, tensor.dtype)
                except (TypeError, ValueError, RuntimeError) as e:
                    raise StateDictError(f"{name}: cannot be read as {tensor.dtype} ({e}); nothing was loaded") from e
        for name, data in converted.items():
            own[name].data, own[name].grad = data, None
        return LoadResult(missing, unexpected)

    def save(self, path):
        """Write the state dict to ``path`` as an ``.npz`` archive, atomically: the file is
        written next to its destination and renamed over it only once complete, so a
        crash mid-write leaves the previous checkpoint intact. Boolean buffers (pruning masks)
        are packed to 1 bit per entry: as float32 0/1 they would double the file. Returns ``path``.
        An earlier checkpoint at ``path`` (or an empty file: tempfile's) is replaced; any other file (a
        results.json, notes) is refused, kept."""
        path = os.fspath(path)
        check_replaceable(path, lambda path: os.path.getsize(path) == 0 or is_npz(path), "model.save", "path")
        write_npz(path, pack_bool_arrays(self.state_dict()))
        return path

    def load(self, path, strict=True):
        """Load a checkpoint written by ``save`` (see ``load_state_dict`` for ``strict``).
        Refuses pickled data; a damaged file raises ``CheckpointError`` saying so."""
        return self.load_state_dict(read_npz(path), strict=strict)

    # --- printing -------------------------------------------------------------------------
    def extra_repr(self):
        """The sizes and options shown between the parentheses of ``repr``; layers override it."""
        return ""

    def __repr__(self):
        lines = [self.extra_repr()] if self.extra_repr() else []
        lines += [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self._modules.items()]
        if not self._modules:
            return f"{type(self).__name__}({''.join(lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _refuse_unregistered(name, value):
    """A plain list, tuple or dict of Modules or Parameters is not registered: their parameters
    would silently not be trained, saved or loaded, so such an assignment is refused, saying how to
    keep one out on purpose (a frozen teacher): ``object.__setattr__``."""
    if not isinstance(value, (list, tuple, dict)):
        return
    items = value.values() if isinstance(value, dict) else value
    if any(isinstance(item, Module) for item in items):
        raise TypeError(f"cannot assign a {type(value).__name__} of Modules to {name!r}: a plain container is not "
                        f"registered (not trained, saved or loaded); use nn.ModuleList([...]) or nn.Sequential(...) "
                        f"(to keep them out on purpose, e.g. a frozen teacher: object.__setattr__(self, {name!r}, ...))")
    if any(isinstance(item, Parameter) for item in items):
        raise TypeError(f"cannot assign a {type(value).__name__} of Parameters to {name!r}: a plain container is not "
                        f"registered (not trained, saved or loaded); assign each Parameter as an attribute, e.g. "
                        f"setattr(self, f\"{name}{{i}}\", p) in a loop")


def pack_bool_arrays(arrays):
    """{name: array} with every boolean array stored as two: ``name.__bits__`` (``np.packbits``
    of it flattened, 1 bit per entry) and ``name.__bits_shape__`` (its shape, int64); other
    arrays unchanged. For writing a state dict: a pruning mask then costs 1/32 of its float32
    weight on disk. ``unpack_bool_arrays`` (which ``load_state_dict`` calls) undoes it."""
    out = {}
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype == np.bool_:
            out[name + _BITS] = np.packbits(array.ravel())
            out[name + _BITS_SHAPE] = np.array(array.shape, dtype=np.int64)
        else:
            out[name] = array
    return out


def unpack_bool_arrays(arrays):
    """The inverse of ``pack_bool_arrays``: every ``name.__bits__`` with its ``name.__bits_shape__``
    back as the boolean array ``name``; other entries (and a ``state`` without packed arrays,
    the same object) unchanged. A packed array of the wrong length raises ``CheckpointError``."""
    if not any(name.endswith(_BITS) for name in arrays):
        return arrays
    out = {}
    for name, value in arrays.items():
        if name.endswith(_BITS_SHAPE) and name[:-len(_BITS_SHAPE)] + _BITS in arrays:
            continue  # read with its bits
        base = name[:-len(_BITS)]
        if not name.endswith(_BITS) or base + _BITS_SHAPE not in arrays:
            out[name] = value
            continue
        shape = tuple(int(n) for n in np.asarray(arrays[base + _BITS_SHAPE]).ravel())
        size, bits = int(np.prod(shape)), np.asarray(value)
        if bits.dtype != np.uint8 or bits.shape != ((size + 7) // 8,):
            raise CheckpointError(f"{base}: {bits.size} packed bytes ({bits.dtype}) do not hold a boolean array "
                                  f"of shape {shape} ({(size + 7) // 8} uint8 expected); the file is damaged")
        out[base] = np.unpackbits(bits, count=size).astype(bool).reshape(shape)
    return out


def _shape_of(value):
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)


def _describe_problems(model, missing, unexpected, mismatched, strict):
    lines = [f"load_state_dict: the state does not fit this {model}:"]
    if strict and missing:
        lines.append(f"  missing keys (in the model, not in the state): {', '.join(missing)}")
    if strict and unexpected:
        lines.append(f"  unexpected keys (in the state, not in the model): {', '.join(unexpected)}")
    for name, theirs, ours in mismatched:
        lines.append(f"  shape mismatch for {name}: state has {theirs}, model has {ours}")
    if strict and unexpected and not missing and not mismatched and all(k.endswith("_mask") for k in unexpected):
        lines.append("These are pruning masks: minidl.compress.load_pruned(model, path) loads a pruned model's "
                     "file, masks included.")
    elif strict and any(key.startswith("model.") for key in unexpected) and "meta" in unexpected:
        lines.append("This is a checkpoint of minidl train (model, optimizer and run together): "
                     "minidl.train.load_classifier(path) reads it, model and vocabulary.")
    else:
        lines.append("Build the model with the same sizes as the one that was saved; strict=False skips "
                     "missing and unexpected keys (never shape mismatches).")
    return "\n".join(lines)

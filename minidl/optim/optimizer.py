"""``Optimizer``: the parameter groups, the per-parameter state and the step loop
that SGD, Adam and AdamW share; each subclass writes only its ``update`` rule.

Updates change ``p.data`` in place with backend array operators (``p.data -= lr * m``),
so the same code runs on NumPy arrays and torch tensors, and the Parameter objects a
model holds stay the ones being trained. Gradients are only read, never modified:
the engine may hand one gradient array to two tensors.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend as _backend
from ..autograd import engine
from ..errors import MinidlError
from ..autograd.tensor import Tensor


class Optimizer:
    """``params``: an iterable of parameters (``model.parameters()``), or of dicts
    ``{"params": [...] or one tensor, "lr": ...}`` to give groups their own hyper-parameters
    (e.g. no weight decay on biases). ``defaults`` fills what a group leaves out.

    ``average`` (0 < average < 1; 0: off) also keeps, after every step, an exponential moving
    average of each parameter's weights (Polyak averaging; the rule of torch's
    ``swa_utils.get_ema_multi_avg_fn``):

        θ̄ ← θ  at a parameter's first step,   then   θ̄ ← average · θ̄ + (1 − average) · θ

    in the optimizer's state (so checkpoints and resume carry it); ``swap_average`` puts it in
    the model for evaluation. The average smooths the step-to-step noise of the weights.
    """

    def __init__(self, params, defaults, average=0.0):
        if not 0.0 <= average < 1.0:
            raise ValueError(f"average must lie in [0, 1), got {average}")
        self.average = average
        self.defaults = dict(defaults)
        if not hasattr(params, "__iter__") or hasattr(params, "named_parameters") or isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} takes the parameters, e.g. model.parameters() or [w, b], got "
                            f"{type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got no parameters to optimize "
                             f"(did model.parameters() come out empty?)")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            self.add_param_group(group)
        self.state = {}  # Parameter -> {"step": int, moment arrays...}; filled lazily by step()

    def add_param_group(self, group):
        if "params" not in group:
            raise ValueError(f"a parameter group needs its parameters, e.g. {{\"params\": [w, b], \"lr\": 0.1}}; "
                             f"got only {sorted(group)}")
        params = group["params"]   # one Tensor is a group of one, as in torch (list() would split it into rows)
        group = {**self.defaults, **group, "params": [params] if isinstance(params, Tensor) else list(params)}
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} optimizes Tensors, got {type(p).__name__}")
            if not p.is_leaf:   # its .grad stays None: the step would change nothing, silently
                raise ValueError(f"{type(self).__name__} cannot optimize a tensor of shape {p.shape} made by an op "
                                 f"(e.g. md.randn(3, requires_grad=True) * 0.01); make the leaf after the op: "
                                 f"(md.randn(3) * 0.01).requires_grad_()")
            if id(p) in seen:
                raise ValueError(f"a parameter of shape {p.shape} appears twice in {type(self).__name__}'s groups")
            seen.add(id(p))
        for name, value in (("learning rate lr", group["lr"]), ("weight_decay", group.get("weight_decay", 0.0))):
            if not (isinstance(value, numbers.Real) and 0 <= value < float("inf")):   # np.float32 too; "0.1": '<' fails
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients before the next backward(): set them to None (torch's default), or to
        zeros with ``set_to_none=False``."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None if set_to_none or p.grad is None else p.xp.zeros_like(p.grad)

    def step(self):
        """Update every parameter that has a gradient; parameters with ``grad is None``
        (frozen, or unused in this forward) are skipped and their state does not advance."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.setdefault(p, {"step": 0})
                state["step"] += 1
                self.update(p, p.grad, state, group)
                engine.changed_in_place(p)
                if self.average:
                    self._keep_average(p, state)

    def _keep_average(self, p, state):
        first = "average" not in state
        average = self._moment(state, "average", p)
        if first:
            average += p.data
        else:
            average *= self.average
            p.xp.add_scaled_(average, 1.0 - self.average, p.data)

    def swap_average(self):
        """Exchange every parameter's weights with their running average (``average``); a second
        call swaps them back. -> whether anything was swapped (False without ``average``)."""
        swapped = False
        for p, state in self.state.items():
            if "average" in state:   # moved first, if the model was moved since the last step
                p.data, state["average"] = self._moment(state, "average", p), p.data
                swapped = True
        return swapped

    def update(self, p, grad, state, group):  # pragma: no cover - interface
        """Change ``p.data`` in place from ``grad``; ``state`` persists between steps."""
        raise NotImplementedError

    # --- resuming -------------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {"step": int, name: NumPy array}}, "param_groups": [{hyper-
        parameters..., "params": [index, ...]}], "optimizer": class name}, indices counting the parameters
        across groups in order (the layout of ``torch.optim``, plus the class). Arrays are copies."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**g, "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {index[id(p)]: {k: (np.array(_backend.backend_of(v).to_numpy(v), copy=True) if k != "step" else v)
                                for k, v in s.items()}
                 for p, s in self.state.items()}
        return {"state": state, "param_groups": groups, "optimizer": type(self).__name__}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters, step counts and moments saved by ``state_dict`` into an
        optimizer built over the same parameters; arrays move to each parameter's device
        and dtype. Checked fully before anything changes; a state of another class (Adam's into SGD) is refused:
        its hyper-parameters would replace this one's, silently. (States saved before the class was recorded load.)"""
        kind = state_dict.get("optimizer", type(self).__name__)
        if kind != type(self).__name__:
            raise MinidlError(f"{type(self).__name__}.load_state_dict: the state was saved by {kind}, this is "
                              f"{type(self).__name__}; load it into {kind}(...) over the same parameters")
        groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in groups]
        if sizes != saved_sizes:
            raise MinidlError(f"{type(self).__name__}.load_state_dict: the saved optimizer had parameter groups "
                              f"of sizes {saved_sizes}, this one has {sizes}; build it over the same model")
        params = [p for g in self.param_groups for p in g["params"]]
        new_state = {}
        for i, saved in state_dict["state"].items():
            p = params[int(i)]
            entry = {}
            for name, value in saved.items():
                if name != "step" and tuple(np.shape(value)) != p.shape:
                    raise MinidlError(f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {i} "
                                      f"has shape {tuple(np.shape(value))}, the parameter has {p.shape}")
                entry[name] = int(value) if name == "step" else p.xp.array(value, p.dtype)
            new_state[p] = entry
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state

    def _moment(self, state, name, p):
        """The array ``state[name]`` on p's device and dtype, created as zeros on first use
        and moved if the model was moved (``model.to(...)``) since it was made."""
        array = state.get(name)
        if array is None:
            array = state[name] = p.xp.zeros_like(p.data)
        elif _backend.backend_of(array) is not p.xp or p.xp.dtype_name(array) != p.dtype:
            array = state[name] = p.xp.array(array, p.dtype)
        return array

    def __repr__(self):
        groups = "\n".join(f"  group {i}: {len(g['params'])} parameters, "
                           + ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
                           for i, g in enumerate(self.param_groups))
        return f"{type(self).__name__}(\n{groups}\n)"

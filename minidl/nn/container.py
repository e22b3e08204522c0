"""Containers: ``ModuleList`` (an indexable list of sub-modules) and ``Sequential``
(a ModuleList whose forward feeds each module's output to the next)."""
from __future__ import annotations

from .module import Module


class ModuleList(Module):
    """A list of modules registered as "0", "1", ... (so their parameters are named
    "0.weight", "1.weight", ... and the optimizer sees them). It has no forward:
    the owner decides how to call them, e.g. one layer per time step or per block."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return self._new(modules[index]) if isinstance(index, slice) else modules[index]

    def _new(self, modules):
        """A container of the same kind holding ``modules`` (what slicing returns)."""
        return ModuleList(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("a ModuleList has no forward: iterate over it, or use Sequential")


class Sequential(ModuleList):
    """``Sequential(Linear(2, 16), Tanh(), Linear(16, 2))(x)`` applies the modules in order.

    Shapes: whatever the first module takes -> whatever the last one returns.
    """

    def __init__(self, *modules):
        super().__init__(modules)

    def _new(self, modules):
        return Sequential(*modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

"""``Linear``: the affine map y = x @ W + b."""
from __future__ import annotations

import math

from ..autograd import ops
from . import init
from .module import Module


class Linear(Module):
    """y = x @ W + b.

    Shapes: x (..., D_in) -> y (..., D_out), any leading dimensions (B, or B, T, ...);
    W (D_in, D_out) -- stored input-major so the forward is a plain ``x @ W``, the
    transpose of ``torch.nn.Linear.weight`` --, b (D_out,).

    Both start uniform on ±1/√D_in (PyTorch's default), from the seeded generator.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        init.check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = init.uniform((in_features, out_features), bound, device, dtype)
        self.bias = init.uniform((out_features,), bound, device, dtype) if bias else None

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): expected input (..., "
                             f"{self.in_features}), got shape {x.shape}")
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

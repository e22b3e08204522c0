"""``LayerNorm``: normalise each position's feature vector, then scale and shift."""
from __future__ import annotations

from ..autograd import ops
from . import init
from .module import Module


class LayerNorm(Module):
    """out = γ ⊙ (x − mean(x)) / √(var(x) + eps) + β, statistics over the last axis.

    Shapes: x (..., E) -> (..., E), e.g. (B, T, E); γ (``weight``) and β (``bias``) (E,),
    starting at 1 and 0 so the layer starts as a plain normalisation.
    ``elementwise_affine=False`` drops γ and β.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if not isinstance(normalized_shape, int):
            raise TypeError(f"LayerNorm normalises the last axis only: pass its size E as an int, "
                            f"got {normalized_shape!r}")
        if not eps >= 0:
            raise ValueError(f"LayerNorm: eps is added to the variance and must be >= 0 (default 1e-5), got {eps}")
        self.normalized_shape, self.eps = normalized_shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = init.ones((normalized_shape,), device, dtype) if elementwise_affine else None
        self.bias = init.zeros((normalized_shape,), device, dtype) if elementwise_affine else None

    def forward(self, x):
        if x.shape[-1:] != (self.normalized_shape,):
            raise ValueError(f"LayerNorm({self.normalized_shape}): expected input (..., "
                             f"{self.normalized_shape}), got shape {x.shape}")
        return ops.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        affine = "" if self.elementwise_affine else ", elementwise_affine=False"
        return f"{self.normalized_shape}, eps={self.eps}{affine}"

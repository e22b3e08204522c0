"""``Dropout``: random zeroing during training, the identity in evaluation."""
from __future__ import annotations

from ..autograd import ops
from .module import Module


class Dropout(Module):
    """Zero each value with probability ``p`` and scale the survivors by 1/(1−p) while
    ``self.training``; pass the input through unchanged after ``model.eval()``.

    Shapes: x (...) -> (...), unchanged. The mask comes from the backend's seeded
    generator (``minidl.manual_seed``).
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p is the probability of dropping a value, in [0, 1]; got {p}")
        self.p = p

    def forward(self, x):
        return ops.dropout(x, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"

"""``WindowSelfAttention``: each word attends to the words within ``radius`` of it."""
from __future__ import annotations

from ..autograd import ops
from .linear import Linear
from .module import Module


class WindowSelfAttention(Module):
    """q = x W_q, k = x W_k, v = x W_v;  out_i = Σ_{|j−i| ≤ r} softmax_j(q_i·k_j / √d) v_j.

    x (B, T, D), mask (B, T) -> out (B, T, d), weights (B, T, 2r+1) where weight slot k of
    word i belongs to word i + k − r. Padding and positions past either end get weight 0.
    """

    def __init__(self, input_size, attention_size, radius=5, device=None, dtype=None):
        super().__init__()
        if not isinstance(radius, int) or isinstance(radius, bool) or radius < 0:
            raise ValueError(f"WindowSelfAttention: radius is how many words either side a word sees, a whole "
                             f"number >= 0; got {radius!r}")
        self.radius = radius
        self.query, self.key, self.value = (Linear(input_size, attention_size, bias=False, device=device, dtype=dtype)
                                            for _ in range(3))

    def forward(self, x, mask):
        return ops.window_attention(self.query(x), self.key(x), self.value(x), mask, self.radius)

    def extra_repr(self):
        return f"radius={self.radius}"

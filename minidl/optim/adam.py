"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): the same moments,
differing only in how weight decay enters."""
from __future__ import annotations

import math
import numbers

from .optimizer import Optimizer


class Adam(Optimizer):
    """For each parameter θ with gradient g, at step t = 1, 2, ...:

        g ← g + weight_decay · θ                   (Adam: L2 penalty, rescaled by v below)
        m ← β1 · m + (1 − β1) · g                  first moment (running mean of g)
        v ← β2 · v + (1 − β2) · g²                 second moment (running mean of g²)
        m̂ = m / (1 − β1ᵗ),  v̂ = v / (1 − β2ᵗ)      bias correction: m, v start at 0
        θ ← θ − lr · m̂ / (√v̂ + eps)

    The arithmetic follows ``torch.optim.Adam`` term by term, so both agree to rounding.
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, average=0.0):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(beta, numbers.Real) and 0.0 <= beta < 1.0 for beta in betas)):
            raise ValueError(f"betas must be two numbers (beta1, beta2) in [0, 1), got {betas!r}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay), average)

    def update(self, p, grad, state, group):
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if weight_decay and self.decoupled_weight_decay:
            p.data *= 1.0 - lr * weight_decay
        elif weight_decay:
            grad = grad + weight_decay * p.data  # a new array: the caller's grad stays untouched
        xp = p.xp
        m = self._moment(state, "exp_avg", p)
        v = self._moment(state, "exp_avg_sq", p)
        m *= beta1
        xp.add_scaled_(m, 1.0 - beta1, grad)
        v *= beta2
        xp.add_scaled_(v, 1.0 - beta2, grad, grad)
        t = state["step"]
        step_size = lr / (1.0 - beta1 ** t)
        denominator = xp.sqrt(v)                     # √v̂ + eps, built in place
        denominator /= math.sqrt(1.0 - beta2 ** t)
        denominator += eps
        xp.add_scaled_(p.data, -step_size, m / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ · (1 − lr · weight_decay) before the Adam
    step, instead of adding weight_decay · θ to g. Through g the decay would be divided
    by √v̂, so parameters with large gradients would hardly be regularised; decoupled,
    every weight shrinks at the same rate."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, average=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, average=average)

"""Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 weight decay."""
from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    """For each parameter θ with gradient g (the update of ``torch.optim.SGD``, dampening 0):

        g ← g + weight_decay · θ                    (L2 penalty ½·wd·‖θ‖² folded into g)
        v ← momentum · v + g                        (v = g on the first step)
        d ← g + momentum · v   if nesterov,   else   d = v     (d = g without momentum)
        θ ← θ − lr · d
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0, average=0.0):
        if nesterov and momentum <= 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if not 0 <= momentum < 1:   # 1 and above: the velocity grows without end
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
                         average)

    def update(self, p, grad, state, group):
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if weight_decay:
            grad = grad + weight_decay * p.data  # a new array: the caller's grad stays untouched
        if momentum:
            if "momentum_buffer" in state:
                velocity = self._moment(state, "momentum_buffer", p)
                velocity *= momentum
                velocity += grad
            else:
                velocity = state["momentum_buffer"] = p.xp.copy(grad)
            grad = grad + momentum * velocity if group["nesterov"] else velocity
        p.xp.add_scaled_(p.data, -lr, grad)

"""Learning-rate schedule: linear warm-up from 0 to the base lr over ``warmup_steps``
updates, then linear decay to 0 (or to ``min_lr``) at ``total_steps``, flat after that.

Warm-up keeps the first updates small while Adam's second-moment estimate is still
noisy; the decay lets training settle. With ``min_lr=0`` the values are those of
``transformers.get_linear_schedule_with_warmup``.
"""
from __future__ import annotations


def get_lr(step, base_lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate for update number ``step`` (0-based):

        step < warmup_steps:            base_lr · step / warmup_steps
        warmup_steps <= step < total:   min_lr + (base_lr − min_lr) · (total − step) / (total − warmup)
        step >= total_steps:            min_lr
    """
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:   # (warm-up to the last step divided by zero)
        return min_lr
    return min_lr + (base_lr - min_lr) * (total_steps - step) / (total_steps - warmup_steps)


class LinearWarmupDecay:
    """Sets each parameter group's lr by ``get_lr``, from the group's lr at construction
    (its base lr, kept in the group as ``initial_lr`` as torch does: a second schedule on the
    same optimizer starts from it, not from the lr 0 the first set; to start a second phase from
    another lr, set the group's "initial_lr" to it, or delete it and set "lr"). Call ``step()`` once
    after each ``optimizer.step()``::

        scheduler = LinearWarmupDecay(optimizer, warmup_steps=100, total_steps=1000)
        for batch in batches:
            ...; optimizer.step(); scheduler.step()
    """

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0):
        if warmup_steps < 0 or total_steps <= warmup_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got warmup_steps={warmup_steps}, "
                             f"total_steps={total_steps}")
        self.optimizer = optimizer
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        self.base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        if min_lr < 0:
            raise ValueError(f"min_lr={min_lr} is below 0: a negative learning rate climbs the loss")
        if any(min_lr > base for base in self.base_lrs):
            raise ValueError(f"min_lr={min_lr} is above a base learning rate {self.base_lrs}")
        for group, base_lr in zip(optimizer.param_groups, self.base_lrs):
            group["initial_lr"] = base_lr
        self.last_step = 0
        self._apply()

    def step(self):
        """Advance to the next update and set its learning rate."""
        self.last_step += 1
        self._apply()

    @property
    def lr(self):
        """The learning rate the next update will use (the first group's)."""
        return self.optimizer.param_groups[0]["lr"]

    def _apply(self):
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = get_lr(self.last_step, base_lr, self.warmup_steps, self.total_steps, self.min_lr)

    def state_dict(self):
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        self.last_step, self.base_lrs = int(state["last_step"]), list(state["base_lrs"])
        self._apply()

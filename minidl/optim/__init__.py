"""Optimizers (SGD, Adam, AdamW), gradient clipping and the learning-rate schedule."""
from .adam import Adam, AdamW
from .clip import clip_grad_norm_
from .optimizer import Optimizer
from .schedule import LinearWarmupDecay, get_lr
from .sgd import SGD

__all__ = ["Adam", "AdamW", "LinearWarmupDecay", "Optimizer", "SGD", "clip_grad_norm_", "get_lr"]

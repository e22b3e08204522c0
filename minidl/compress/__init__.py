"""Model compression: knowledge distillation (pruning, low-rank and quantisation to follow)."""
from .distill import DistillationLoss, distill, distillation_loss

__all__ = ["DistillationLoss", "distill", "distillation_loss"]

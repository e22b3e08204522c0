"""Model compression: knowledge distillation, pruning, low-rank factorisation, int8 quantisation."""
from .distill import DistillationLoss, distill, distillation_loss
from .lowrank import LowRankLinear, choose_rank, factorize, max_useful_rank, ranks_of, replace_modules
from .prune import (GradualPruning, SparsityReport, SparsityRow, apply_masks, cubic_sparsity, format_report, get_mask,
                    load_pruned, load_sparse, prune_global_magnitude, prune_l1_per_layer, read_sparse, save_sparse,
                    sparsity_report)
from .quantize import FakeQuantize, QuantizedLinear, dequantize, fake_quantize, quantize, quantize_per_channel

__all__ = ["DistillationLoss", "FakeQuantize", "GradualPruning", "LowRankLinear", "QuantizedLinear", "SparsityReport",
           "SparsityRow", "apply_masks", "choose_rank", "cubic_sparsity", "dequantize", "distill", "distillation_loss",
           "factorize", "fake_quantize", "format_report", "get_mask", "load_pruned", "load_sparse", "max_useful_rank",
           "prune_global_magnitude", "prune_l1_per_layer", "quantize", "quantize_per_channel", "ranks_of",
           "read_sparse", "replace_modules", "save_sparse", "sparsity_report"]

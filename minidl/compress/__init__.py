"""Model compression: knowledge distillation, pruning (masks, or whole heads/neurons/units), low-rank
factorisation, int8 quantisation; ``report`` puts them side by side (``minidl compress-report``)."""
from .distill import DistillationLoss, IntermediateMatching, distill, distillation_loss, layer_map, teacher_logits_table
from .lowrank import LowRankLinear, choose_rank, factorize, max_useful_rank, ranks_of, replace_modules
from .prune import (GradualPruning, SparsityReport, SparsityRow, apply_masks, cubic_sparsity, format_report, get_mask,
                    load_pruned, load_sparse, prune_global_magnitude, prune_l1_per_layer, read_sparse, save_sparse,
                    sparsity_report, weight_matrices)
from .quantize import (FakeQuantize, QuantizedEmbedding, QuantizedLinear, dequantize, fake_quantize, quantize,
                       quantize_per_channel)
from .structured import (PrunedLayer, StructuredReport, load_structured, prune_ffn_neurons, prune_heads,
                         prune_rnn_units, restructure, save_structured, structure_of)

__all__ = ["DistillationLoss", "FakeQuantize", "GradualPruning", "IntermediateMatching", "LowRankLinear", "PrunedLayer",
           "QuantizedEmbedding", "QuantizedLinear", "SparsityReport", "SparsityRow", "StructuredReport", "apply_masks",
           "choose_rank", "cubic_sparsity", "dequantize", "distill", "distillation_loss", "factorize", "fake_quantize",
           "format_report", "get_mask", "layer_map", "load_pruned", "load_sparse", "load_structured",
           "max_useful_rank", "prune_ffn_neurons", "prune_global_magnitude", "prune_heads", "prune_l1_per_layer",
           "prune_rnn_units", "quantize", "quantize_per_channel", "ranks_of", "read_sparse", "replace_modules",
           "restructure", "save_sparse", "save_structured", "sparsity_report", "structure_of", "teacher_logits_table",
           "weight_matrices"]

"""Model compression: knowledge distillation, pruning (masks, or whole heads/neurons/units), low-rank
factorisation, int8 quantisation (post-training, or quantisation-aware training); ``report`` puts
them side by side (``minidl compress-report``)."""
from .distill import DistillationLoss, IntermediateMatching, distill, distillation_loss, layer_map, teacher_logits_table
from .lowrank import LowRankLinear, choose_rank, factorize, max_useful_rank, ranks_of, replace_modules
from .prune import (GradualPruning, LockedMasks, SparsityReport, SparsityRow, apply_masks, cubic_sparsity,
                    format_report, get_mask, load_pruned, load_sparse, prune_global_magnitude, prune_l1_per_layer,
                    read_sparse, save_sparse, sparsity_report, weight_matrices)
from .qat import (FakeQuantizeActivations, QATLinear, QATReport, activation_grid, activation_levels, convert_qat,
                  fake_quantize_activations, prepare_qat)
from .quantize import (FakeQuantize, QuantizedEmbedding, QuantizedLinear, dequantize, fake_quantize, quantize,
                       quantize_per_channel)
from .rank_sweep import default_ranks, format_rank_sweep, full_rank, plot_rank_sweep, rank_sweep
from .structured import (PrunedLayer, StructuredReport, load_structured, prune_ffn_neurons, prune_heads,
                         prune_rnn_units, restructure, save_structured, structure_of)

__all__ = ["DistillationLoss", "FakeQuantize", "FakeQuantizeActivations", "GradualPruning", "IntermediateMatching",
           "LockedMasks", "LowRankLinear", "PrunedLayer", "QATLinear", "QATReport", "QuantizedEmbedding",
           "QuantizedLinear", "SparsityReport", "SparsityRow", "StructuredReport", "activation_grid",
           "activation_levels", "apply_masks", "choose_rank", "convert_qat", "cubic_sparsity", "dequantize", "distill",
           "distillation_loss", "factorize", "fake_quantize", "fake_quantize_activations", "format_report", "get_mask",
           "layer_map", "load_pruned", "load_sparse", "load_structured", "max_useful_rank", "prepare_qat",
           "prune_ffn_neurons", "prune_global_magnitude", "prune_heads", "prune_l1_per_layer", "prune_rnn_units",
           "quantize", "quantize_per_channel", "ranks_of", "read_sparse", "replace_modules", "restructure",
           "save_sparse", "save_structured", "sparsity_report", "structure_of", "teacher_logits_table",
           "weight_matrices", "default_ranks", "format_rank_sweep", "full_rank", "plot_rank_sweep", "rank_sweep"]

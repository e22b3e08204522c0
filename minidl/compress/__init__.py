"""Model compression: knowledge distillation, low-rank factorisation, int8 quantisation."""
from .distill import DistillationLoss, distill, distillation_loss
from .lowrank import LowRankLinear, choose_rank, factorize, max_useful_rank, ranks_of, replace_modules
from .quantize import FakeQuantize, QuantizedLinear, dequantize, fake_quantize, quantize, quantize_per_channel

__all__ = ["DistillationLoss", "FakeQuantize", "LowRankLinear", "QuantizedLinear", "choose_rank", "dequantize",
           "distill", "distillation_loss", "factorize", "fake_quantize", "max_useful_rank", "quantize",
           "quantize_per_channel", "ranks_of", "replace_modules"]

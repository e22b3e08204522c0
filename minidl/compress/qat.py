"""Quantisation-aware training (QAT): fine-tune a model through the rounding it will meet in int8.

Post-training quantisation (``quantize``) rounds a trained model once and hopes; QAT trains it
with the rounding in the forward, so the weights move to where the int8 grid serves them well
("Prune Once for All", Zafrir et al. 2021, ends its pipeline this way). Each Linear becomes

    y = fq(x) @ fq_w(W ⊙ M) + b          x (..., D_in), W (D_in, D_out), b (D_out,) -> y (..., D_out)

fq_w   the per-output-channel symmetric int8 grid of ``quantize_per_channel``, recomputed from
       the current weight at every forward: fq_w(W) is bit for bit the q · scale that
       ``convert_qat`` stores (``FakeQuantize``).
M      the pruning mask (the ``weight_mask`` buffer of ``prune``), when W has one: a pruned
       weight is 0 in the forward and gets no gradient, so it stays exactly 0 under any
       optimizer built afterwards, with or without ``apply_masks``; 0 quantises to 0.
fq     (``activations=True``; off by default) the activation rounding of torch-CPU's int8
       GEMM, reproduced: per tensor, asymmetric, unsigned, over x's own range stretched to
       contain 0, recomputed every call (that kernel quantises x "dynamically", per call):

           lo = min(min x, 0),   hi = max(max x, 0),   L = 255 (uint8), 127 (7-bit, CPUs without VNNI)
           s = (hi − lo) / L   as float32 (0.1 for an all-zero x; at least 6.1e-5, the kernel's floor)
           z = round(−lo / s) ∈ [0, L]                                       (the zero point)
           fq(x) = (clip(round(x · (1/s) + z), 0, L) − z) · s

       This is PyTorch's ``ChooseQuantizationParams`` as fbgemm and oneDNN use it, and their
       rounding (x times the float32 reciprocal of s, in x's dtype: for float32 x, oneDNN's
       arithmetic to the bit; fbgemm's fused multiply-add differs only within an ulp of a tie),
       so a converted model on torch-CPU computes, up to float32 summation order, the same
       numbers as the fake-quantised one. Asymmetric uint8 rather than symmetric int8 because
       that is what the kernel does, and rightly: x after a ReLU or a GELU is mostly ≥ 0, where
       a symmetric grid would spend half its levels on values that never occur. NumPy and CUDA
       have no int8 GEMM (``QuantizedLinear`` multiplies the unrounded x by q · scale there), so
       on those devices activation QAT trains for a rounding that inference will not do (within
       half a step of it, so it does no harm, but buys nothing either).

Gradients (the straight-through estimator, STE): round() has derivative 0 almost everywhere,
so it is taken as the identity inside the grid's range,

    dL/dW = (dL/dŴ · [|W| ≤ 127 · scale]) ⊙ M = dL/dŴ ⊙ M   (the scale comes from W: nothing is clipped)
    dL/dx = dL/dx̂                                            (the range comes from x: nothing is
                                                             clipped by more than half a step)
    dL/db = Σ dL/dy

with the scales and the zero point treated as constants, as in torch's ``w + (fq(w) − w).detach()``.

    model.load_state_dict(teacher.state_dict())     # a copy of the trained float model
    prepare_qat(model)                  # every Linear -> QATLinear, same Parameters
    distill(model, teacher, train, epochs=2, lr=1e-3)   # or any training through minidl.train
    convert_qat(model)                  # every QATLinear -> int8 QuantizedLinear, same logits
    model.save("int8.npz")              # loads into build_model(...) after quantize(...)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import ops
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..nn.linear import Linear
from ..nn.module import Module, Parameter
from .lowrank import _refuse_root, replace_modules
from .prune import MASK_SUFFIX, get_mask
from .quantize import QuantizedLinear, _replace_by_int8, fake_quantize

SCALE_FLOOR = 6.1e-5  # PyTorch's SMALL_SCALE_THRESHOLD: the int8 GEMM never uses a finer activation step
_ZERO_STEP = float(np.float32(0.1))  # its step for an all-zero x (any would do: every code is z = 0)


def activation_levels(xp):
    """L, the largest unsigned activation code of ``xp``'s int8 GEMM: 127 where torch-CPU uses
    7-bit activations (CPUs without VNNI, so u8·s8 pair sums cannot saturate int16), else 255
    (also on NumPy and CUDA, which do not round activations at all: the 8-bit grid to train for)."""
    kernel = getattr(xp, "_int8_kernel", None)
    choice = kernel() if kernel is not None else None
    return 127 if choice is not None and choice[1] else 255


def activation_grid(x, levels=255):
    """(s, z) of the int8 GEMM's dynamic per-tensor quantisation of the array x: the step s
    (a float32 value) and the zero point z (an int in [0, L]); see the module docstring."""
    if 0 in tuple(x.shape):
        return _ZERO_STEP, 0
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    raw = (hi - lo) / levels
    if np.float32(raw) == 0 or not np.isfinite(1.0 / np.float32(raw)):
        return _ZERO_STEP, 0                               # all zero (lo = hi = 0): z = 0
    zero_point = int(min(max(round(-lo / raw), 0), levels))   # the floor stretches lo and hi alike: same z
    return float(np.float32(max(raw, SCALE_FLOOR))), zero_point


class FakeQuantizeActivations(Function):
    """x̂ = (clip(round(x · (1/s) + z), 0, L) − z) · s with (s, z) = ``activation_grid(x, L)``, in
    x's dtype; backward the straight-through estimator dL/dx = dL/dx̂ (the grid covers x's own
    range, so no element is clipped by more than half a step; s and z are constants)."""

    @staticmethod
    def forward(ctx, x, levels=None):
        xp = ctx.xp
        levels = activation_levels(xp) if levels is None else levels
        step, zero_point = activation_grid(x, levels)
        inverse = float(np.float32(1.0) / np.float32(step))         # the kernels multiply by a float32 1/s
        codes = (x * inverse + zero_point).round().clip(0, levels)
        return xp.astype((codes - zero_point) * step, xp.dtype_name(x))

    @staticmethod
    def backward(ctx, grad):
        return grad


def fake_quantize_activations(x, levels=None):
    """``FakeQuantizeActivations`` of a Tensor x (any shape, one grid for the whole tensor);
    ``levels`` L: 255 or 127, by default what x's device's int8 GEMM uses."""
    return FakeQuantizeActivations.apply(x, levels=levels)


class QATLinear(Module):
    """A Linear trained through int8 rounding: y = fq(x) @ fq_w(W ⊙ M) + b (module docstring).

    Wraps the Parameters it is given (``weight`` (D_in, D_out), ``bias`` (D_out,) or None)
    rather than copying them, so the Linear it replaces, an optimizer built afterwards and
    this layer all see one set of numbers; ``mask``: the weight's pruning mask (a Tensor of
    0/1, kept as the ``weight_mask`` buffer, where ``prune`` looks for it). The state dict
    has the Linear's keys (weight, bias, weight_mask): a QAT checkpoint loads into the float
    model and back. Shapes: x (..., D_in) -> y (..., D_out).

    Prune before ``prepare_qat`` (the masks come along), as "Prune Once for All" does; pruning
    afterwards works too, but ``prune``'s default targets are Linear layers, so name the weights
    (``parameters=["0.weight", ...]``).
    """

    def __init__(self, weight, bias=None, activations=False, mask=None):
        super().__init__()
        if not isinstance(weight, Parameter) or len(weight.shape) != 2:
            raise TypeError(f"QATLinear wraps a (D_in, D_out) Parameter, got {type(weight).__name__} "
                            f"of shape {tuple(getattr(weight, 'shape', ()))}")
        self.in_features, self.out_features = weight.shape
        self.weight, self.bias, self.activations = weight, bias, bool(activations)
        if mask is not None:
            self.register_buffer("weight" + MASK_SUFFIX, mask)

    @classmethod
    def from_linear(cls, linear, activations=False):
        """The QATLinear sharing ``linear``'s Parameters and pruning mask."""
        if not isinstance(linear, Linear):
            raise TypeError(f"from_linear expects a minidl.nn.Linear, got {type(linear).__name__}")
        layer = cls(linear.weight, linear.bias, activations, get_mask(linear))
        layer.training = linear.training
        return layer

    def masked_weight(self):
        """W ⊙ M, a constant Tensor (D_in, D_out) (W itself when unpruned)."""
        mask = get_mask(self)
        w = self.weight
        return Tensor._wrap(w.data if mask is None else w.data * mask.data, w.xp)

    def fake_quantized_weight(self):
        """fq_w(W ⊙ M) (D_in, D_out), in the graph: the STE gradient reaches W (not where M = 0)."""
        mask = get_mask(self)
        return fake_quantize(self.weight if mask is None else self.weight * mask)

    def to_quantized(self):
        """The int8 ``QuantizedLinear`` of the current W ⊙ M and b: q · scale = fq_w(W ⊙ M)."""
        layer = QuantizedLinear.from_weight(self.masked_weight(), self.bias)
        layer.training = self.training
        return layer

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"QATLinear({self.in_features}, {self.out_features}): expected input "
                             f"(..., {self.in_features}), got shape {x.shape}")
        if self.activations:
            x = fake_quantize_activations(x)
        return ops.linear(x, self.fake_quantized_weight(), self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"fake int8 weights{' and activations' if self.activations else ''}"
                f"{', pruned' if get_mask(self) is not None else ''}")


@dataclass
class QATReport:
    name: str
    shape: tuple            # (D_in, D_out)
    sparsity: float         # share of the weights its pruning mask holds at 0 (0.0: no mask)
    activations: bool       # activations fake-quantised too

    def __str__(self):
        what = "weights and activations" if self.activations else "weights"
        return f"{self.name:<24} {str(self.shape):<12} fake int8 {what}, {self.sparsity:.0%} pruned"


def _kinds(model, kinds):
    return [name for name, module in model.named_modules() if isinstance(module, kinds)]


def prepare_qat(model, activations=False):
    """Replace every ``Linear`` inside ``model`` (in place; Embeddings stay) by a ``QATLinear``
    on the same Parameters and pruning masks, so build the optimizer afterwards or before:
    either trains them. ``activations=True`` also fake-quantises each layer's input (module
    docstring). Returns one ``QATReport`` per replaced layer, in model order."""
    _refuse_root(model, "prepare_qat", "QATLinear.from_linear(layer)")
    report = []

    def convert(name, module):
        if not isinstance(module, Linear):
            return None
        mask = get_mask(module)
        sparsity = 0.0 if mask is None else float(1.0 - np.count_nonzero(mask.numpy()) / max(mask.numpy().size, 1))
        report.append(QATReport(name, (module.in_features, module.out_features), sparsity, bool(activations)))
        return QATLinear.from_linear(module, activations)

    replace_modules(model, convert)
    if not report:
        already = " (its layers are already QATLinear: train it, then convert_qat)" if _kinds(model, QATLinear) else ""
        raise ValueError(f"prepare_qat: {type(model).__name__} has no Linear layer to train quantisation-aware"
                         f"{already}")
    return report


def convert_qat(model, embeddings=False):
    """Replace every ``QATLinear`` inside ``model`` (in place) by the int8 ``QuantizedLinear`` of
    its current W ⊙ M and b, whose q · scale is exactly the fake-quantised weight it trained
    with: the converted model's logits are the QAT model's (bit for bit on NumPy without
    activation QAT; on torch-CPU, whose int8 GEMM rounds x, within the activation rounding,
    which ``activations=True`` trained for and reproduces). ``embeddings=True`` also rounds
    every Embedding table to int8 rows (``QuantizedEmbedding``, post-training: QAT does not
    fake-quantise tables). Returns one ``QuantizeReport`` per converted layer, in model order."""
    _refuse_root(model, "convert_qat", "layer.to_quantized()", QATLinear)
    if not _kinds(model, QATLinear):
        hint = ("; for post-training int8 use quantize(model), or prepare_qat(model) and train first"
                if _kinds(model, Linear) else "")
        raise ValueError(f"convert_qat: {type(model).__name__} has no QATLinear layer to convert{hint}")
    return _replace_by_int8(model, QATLinear, lambda layer: (layer.to_quantized(), layer.masked_weight()), embeddings)

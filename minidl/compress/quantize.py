"""8-bit quantisation: int8 weights with one float32 scale per output channel.

Symmetric, per output channel c (a column of W (D_in, D_out)):

    scale_c = max_i |W[i, c]| / 127       (1 for an all-zero column)
    q[i, c] = clip(round(W[i, c] / scale_c), −127, 127)   as int8
    W ≈ q · scale                           |W − q·scale| ≤ scale_c / 2 element-wise

−128 is never used, so the grid is symmetric around 0 and 0 is exact. A QuantizedLinear
stores q (int8) and the scales (float32) as buffers, so its checkpoint holds 1 byte per
weight instead of 4: a saved quantised model really is ~4× smaller.

Forward: y = x @ (q · scale) + b, through the backend's int8 linear, prepared once per set of
weights (``xp.int8_linear_pack``) and again only when a buffer gets a new array (load_state_dict,
to(device), assignment):

    torch on the CPU   PyTorch's quantized int8 GEMM (fbgemm / oneDNN) as an array function: q
                       packed once into its layout, the activations quantised per tensor on the
                       fly (uint8), int32 accumulation. Faster than the float32 GEMM (2.4× on
                       8192 rows, 1.2-1.4× on 32768, where writing the float output dominates),
                       and within s_x / 2 · Σ_i |q_ic · scale_c| of x @ (q · scale) + b,
                       s_x = range(x) / 255 (/ 127 on CPUs without VNNI).
    NumPy, CUDA        no int8 GEMM to call (NumPy's integer ``@`` bypasses BLAS and is several
                       times slower than float32): q · scale expanded once and kept, then the
                       float GEMM: x @ (q · scale) + b with no activation rounding, at float32
                       speed; there int8 saves disk, not time.

Gradients reach x as through x @ (q · scale) + b, the activation rounding passed straight
through; none reaches q, the scales or the bias: QuantizedLinear is for inference.

Quantisation-aware training (``minidl.compress.qat``) uses ``fake_quantize(W)``: forward
dequantize(quantize_per_channel(W)), the very q · scale a QuantizedLinear built from W holds,
backward the straight-through estimator (the gradient passes unchanged wherever |W| ≤ 127·scale,
i.e. inside the clipping range; outside it, 0).

    report = quantize(model)            # every Linear -> QuantizedLinear, in place (post-training)
    model.save("int8.npz")              # ≈ ¼ of the float32 file
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend, creation
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module, Parameter
from .lowrank import _refuse_root, replace_modules

QMAX = 127


def _scales(xp, w):
    """scale_c = max|W[:, c]| / 127 (1 where the column is all zero), shape (D_out,)."""
    peak = xp.max(xp.abs(w), axis=0)
    return xp.where(peak > 0, peak / QMAX, xp.ones_like(peak))


def _quantize_array(w, scale):
    """round(W / scale) clipped to [−127, 127], still in W's float dtype."""
    return (w / scale).round().clip(-QMAX, QMAX)


def quantize_per_channel(weight):
    """(q int8 (D_in, D_out), scale float32 (D_out,)) of a weight W (D_in, D_out).

    ``weight``: a minidl Tensor (the results are Tensors on its device) or a NumPy array.
    """
    if isinstance(weight, Tensor):
        xp, w = weight.xp, weight.data
    else:
        xp, w = backend.NUMPY, np.asarray(weight)
    if w.ndim != 2:
        raise ValueError(f"quantize_per_channel expects a (D_in, D_out) weight, got shape {tuple(w.shape)}")
    if not xp.all_finite(w):   # a NaN weight was stored as 0: a diverged model looked fine once quantised
        raise ValueError("quantize_per_channel: the weight holds NaN or Inf (a diverged model?); quantise a "
                         "checkpoint with finite weights")
    w = xp.astype(w, "float64")  # float64: the scale and the rounding are computed without extra error
    scale = _scales(xp, w)
    q = xp.astype(_quantize_array(w, scale), "int8")
    scale = xp.astype(scale, "float32")
    if isinstance(weight, Tensor):
        return Tensor._wrap(q, xp), Tensor._wrap(scale, xp)
    return q, scale


def dequantize(q, scale, dtype="float32"):
    """q · scale as a float array (Tensor in, Tensor out; NumPy in, NumPy out)."""
    if isinstance(q, Tensor):
        xp = q.xp
        s = scale.data if isinstance(scale, Tensor) else scale
        return Tensor._wrap(xp.astype(q.data, dtype) * xp.astype(s, dtype), xp)
    return np.asarray(q).astype(dtype) * np.asarray(scale).astype(dtype)


class Int8Linear(Function):
    """y = x @ (q · scale) + b through the backend's int8 linear; ``packed``: q, the scales and
    b as ``xp.int8_linear_pack`` prepared them (q and the scales are inputs too, for the
    backward and so that a layer on another device than x is an error, as in any op).

    Backward as through x @ (q · scale) + b, the kernel's activation rounding passed straight
    through: dL/dx = dL/dy (q · scale)ᵀ. q, the scales and b are constants (packed, so a
    gradient step on b could not reach the kernel anyway).
    """

    @staticmethod
    def forward(ctx, x, qweight, scale, packed=None):
        ctx.save_for_backward(qweight, scale)
        return ctx.xp.int8_linear(x, packed)

    @staticmethod
    def backward(ctx, grad):
        qweight, scale = ctx.saved
        xp = ctx.xp
        dtype = xp.dtype_name(grad)
        return grad @ xp.swap_last(xp.astype(qweight, dtype) * xp.astype(scale, dtype)), None, None


class QuantizedLinear(Module):
    """An inference-only Linear with int8 weights: y = x @ (q · scale) + b.

    Buffers: ``qweight`` int8 (D_in, D_out), ``scale`` float32 (D_out,); ``bias`` a frozen
    float Parameter (D_out,) or None. Shapes: x (..., D_in) -> y (..., D_out).
    The forward runs the backend's int8 linear (see the module docstring for what runs where),
    with the weights prepared on first use and again whenever qweight, scale or bias is given
    a new array; change them by assigning arrays, not by writing into the old ones.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("qweight", creation.zeros(in_features, out_features, device=device, dtype="int8"))
        self.register_buffer("scale", creation.ones(out_features, device=device, dtype="float32"))
        self.bias = (Parameter(creation.zeros(out_features, device=device, dtype=dtype), requires_grad=False)
                     if bias else None)
        self._packed = None  # (the arrays it was prepared from, the backend's packed weights)

    @classmethod
    def from_linear(cls, linear):
        if not isinstance(linear, Linear):
            raise TypeError(f"from_linear expects a minidl.nn.Linear, got {type(linear).__name__}")
        layer = cls.from_weight(linear.weight, linear.bias)
        layer.training = linear.training
        return layer

    @classmethod
    def from_weight(cls, weight, bias=None):
        """The int8 layer of a weight Tensor W (D_in, D_out) and a bias (D_out,) or None, on W's
        device and dtype (``from_linear``'s work, also for layers that are not a Linear, e.g. a
        ``QATLinear``'s pruned weight W ⊙ M). The bias is copied, so later steps on it do not
        reach the int8 layer."""
        d_in, d_out = weight.shape
        layer = cls(d_in, d_out, bias=bias is not None, device=weight.device, dtype=weight.dtype)
        layer.qweight, layer.scale = quantize_per_channel(weight)
        if bias is not None:
            layer.bias.data = layer.bias.xp.array(bias.data)
        return layer

    def dequantized_weight(self, dtype="float32"):
        """q · scale as a Tensor (D_in, D_out) (constant: no gradient)."""
        return dequantize(self.qweight, self.scale, dtype)

    def packed(self):
        """The backend's prepared weights for the current buffers. load_state_dict and to()
        give the buffers new arrays rather than writing into the old ones, so comparing
        identities is all the bookkeeping a reload or a move needs."""
        sources = (self.qweight.data, self.scale.data, None if self.bias is None else self.bias.data)
        if self._packed is None or any(a is not b for a, b in zip(self._packed[0], sources)):
            self._packed = (sources, self.qweight.xp.int8_linear_pack(*sources))
        return self._packed[1]

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"QuantizedLinear({self.in_features}, {self.out_features}): expected input "
                             f"(..., {self.in_features}), got shape {x.shape}")
        return Int8Linear.apply(x, self.qweight, self.scale, packed=self.packed())

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, int8")


class QuantizedEmbedding(Module):
    """An inference-only Embedding with int8 rows: out[b, t] = q[ids[b, t]] · scale[ids[b, t]].

    One scale per word (per row of W (V, E)), the same symmetric rule as QuantizedLinear's
    per-column one applied to Wᵀ: scale_v = max_e |W[v, e]| / 127. In a text classifier the
    table is most of the weights, so quantising it is what makes the whole file ~4× smaller.
    Buffers: ``qweight`` int8 (V, E), ``scale`` (V,) in the float dtype the rows come out in
    (float32; float64 in a float64 model, also after ``model.to(dtype="float64")``, which left
    the rows float32 while the scales moved). ids (B, T) -> (B, T, E).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.register_buffer("qweight", creation.zeros(num_embeddings, embedding_dim, device=device, dtype="int8"))
        self.register_buffer("scale", creation.ones(num_embeddings, device=device, dtype=dtype or "float32"))

    @property
    def dtype(self):
        """The float dtype of the rows it gives: its scales'."""
        return self.scale.dtype

    @classmethod
    def from_embedding(cls, embedding):
        if not isinstance(embedding, Embedding):
            raise TypeError(f"from_embedding expects a minidl.nn.Embedding, got {type(embedding).__name__}")
        w = embedding.weight
        layer = cls(embedding.num_embeddings, embedding.embedding_dim, embedding.padding_idx, device=w.device,
                    dtype=w.dtype)
        q, scale = quantize_per_channel(w.T)                   # per column of Wᵀ = per row of W
        layer.qweight, layer.scale = q.T, scale.to(dtype=w.dtype)
        layer.training = embedding.training
        return layer

    @property
    def weight(self):
        """The dequantised table q · scale (V, E), a constant (e.g. for a tied output layer)."""
        return dequantize(self.qweight, self.scale.data[:, None], self.dtype)

    def forward(self, ids):
        xp = self.qweight.xp
        index = ids.data if isinstance(ids, Tensor) else xp.asarray(ids)
        rows = xp.astype(self.qweight.data[index], self.dtype)         # (B, T, E)
        return Tensor._wrap(rows * xp.astype(self.scale.data[index], self.dtype)[..., None], xp)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


@dataclass
class QuantizeReport:
    name: str
    shape: tuple            # (D_in, D_out)
    max_abs_error: float    # max |W − q·scale|
    max_scale: float        # the largest scale: the error bound is max_scale / 2

    def __str__(self):
        return (f"{self.name:<24} {str(self.shape):<12} max |W − q·scale| {self.max_abs_error:.3g} "
                f"(bound {self.max_scale / 2:.3g})")


def quantize(model, embeddings=False):
    """Replace every ``Linear`` inside ``model`` (in place) by a ``QuantizedLinear`` and, with
    ``embeddings=True``, every ``Embedding`` by a ``QuantizedEmbedding`` (per-row scales).
    Returns one ``QuantizeReport`` per replaced layer, in model order."""
    _refuse_root(model, "quantize", "QuantizedLinear.from_linear(layer)")
    report = _replace_by_int8(model, Linear, lambda linear: (QuantizedLinear.from_linear(linear), linear.weight),
                              embeddings)
    if not report:   # it returned [] and left the model float, silently
        raise ValueError(f"quantize: {type(model).__name__} has no Linear layer{' or Embedding' * embeddings} to "
                         f"quantise (a LowRankLinear's factors are not Linears; layers already int8 stay so)")
    return report


def _replace_by_int8(model, kind, to_int8, embeddings):
    """Replace every ``kind`` module inside ``model`` (in place) by its int8 layer, ``to_int8(module)``
    -> (QuantizedLinear, the float weight Tensor (D_in, D_out) it rounds), and with ``embeddings``
    every Embedding by its ``QuantizedEmbedding``; -> one ``QuantizeReport`` per replaced layer."""
    report = []

    def convert(name, module):
        if isinstance(module, Embedding) and embeddings:
            new, weight = QuantizedEmbedding.from_embedding(module), module.weight
            restored = new.weight.numpy().astype(np.float64)
        elif isinstance(module, kind):
            new, weight = to_int8(module)
            restored = new.dequantized_weight("float64").numpy()
        else:
            return None
        w = np.asarray(weight.numpy(), np.float64)
        error = float(np.max(np.abs(w - restored), initial=0.0))
        report.append(QuantizeReport(name, w.shape, error, float(new.scale.numpy().max(initial=0.0))))
        return new

    replace_modules(model, convert)
    return report


def stored_numbers(model):
    """(parameters, non-zeros): every float parameter and every int8 weight buffer."""
    arrays = [p.numpy() for p in model.parameters()]
    arrays += [b.numpy() for name, b in model.named_buffers() if name.endswith("qweight")]
    return sum(a.size for a in arrays), sum(int(np.count_nonzero(a)) for a in arrays)


class FakeQuantize(Function):
    """Quantisation-aware training: forward dequantize(quantize(W)) per output channel,
    backward the straight-through estimator.

        Ŵ = q · scale,   q = clip(round(W / scale), −127, 127)        W, Ŵ (D_in, D_out)

    With the scale computed from W (the default), q and the scale are exactly those of
    ``quantize_per_channel(W)`` (rounding against the float64 scale, the product taken with
    the float32 scale it stores), so Ŵ is bit for bit the q · scale of the QuantizedLinear
    that W converts to: what a quantisation-aware model trained against is what it runs.

    The rounding has derivative 0 almost everywhere, which would stop training; the STE
    pretends it is the identity inside the clipping range:

        dL/dW = dL/dŴ · [ |W| ≤ 127 · scale ]

    With the scale computed from W itself (the default) nothing is ever clipped (the range
    test uses the float64 scale, so a column's largest |W| is inside even where the float32
    one rounds down), and the gradient passes unchanged; a fixed ``scale`` (e.g. calibrated
    earlier) can clip.
    """

    @staticmethod
    def forward(ctx, w, scale=None):
        xp = ctx.xp
        wide, dtype = xp.astype(w, "float64"), xp.dtype_name(w)
        if scale is None:
            s = _scales(xp, wide)
            stored = xp.astype(s, "float32")          # what quantize_per_channel keeps
        else:
            s = stored = xp.astype(xp.asarray(scale), "float64")
        ctx.save_for_backward(xp.abs(wide) <= QMAX * s)
        return xp.astype(_quantize_array(wide, s), dtype) * xp.astype(stored, dtype)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved
        return ctx.xp.where(inside, grad, ctx.xp.zeros_like(grad))


def fake_quantize(weight, scale=None):
    """``FakeQuantize`` of a weight Tensor (D_in, D_out); ``scale`` (D_out,) fixes the grid."""
    if isinstance(scale, Tensor):
        scale = scale.data
    return FakeQuantize.apply(weight, scale=scale)

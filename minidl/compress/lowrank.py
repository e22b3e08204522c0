"""Low-rank factorisation: replace a Linear's D_in×D_out weight by two thin matrices.

    W ≈ U_r Σ_r V_rᵀ   (truncated SVD, the best rank-r approximation in Frobenius norm)
    A = U_r √Σ_r   (D_in, r),   B = √Σ_r V_rᵀ   (r, D_out),   y = (x @ A) @ B + b

Shapes: x (..., D_in) -> y (..., D_out). The relative error is exact and known up front:

    ‖W − A B‖_F / ‖W‖_F = sqrt(Σ_{i>r} σ_i² / Σ_i σ_i²)

so ``energy=0.9`` (keep 90 % of Σσ²) means a relative error of at most √0.1 ≈ 0.32.

It only saves anything if r·(D_in + D_out) < D_in·D_out: a rank at or above
D_in·D_out / (D_in + D_out) makes the "compressed" layer as big or bigger, which is how
the original projects' low-rank models ended up no smaller on disk. ``from_linear``
refuses such a rank, ``factorize`` skips (and reports) such layers.

    report = factorize(model, energy=0.95, min_size=4096)
    for row in report: print(row)
    model.save("small.npz")                      # really smaller: A and B are all it stores
    fresh = build_model(...); factorize(fresh, rank=ranks_of(report)); fresh.load("small.npz")
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..autograd import ops
from ..nn import init
from ..nn.linear import Linear
from ..nn.module import Module


class LowRankLinear(Module):
    """y = (x @ A) @ B + b with A (D_in, r), B (r, D_out), b (D_out,).

    Gradients come from the two matmuls' hand-written backwards (checked by gradcheck).
    A fresh one starts uniform like ``Linear`` (so that a model can be built to receive a
    saved factorised state dict); ``from_linear`` builds one from a trained layer.
    """

    def __init__(self, in_features, out_features, rank, bias=True, device=None, dtype=None):
        super().__init__()
        if in_features < 1 or out_features < 1 or rank < 1:
            raise ValueError(f"LowRankLinear needs positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}, rank={rank}")
        _check_saves(in_features, out_features, rank)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.A = init.uniform((in_features, rank), 1.0 / math.sqrt(in_features), device, dtype)
        self.B = init.uniform((rank, out_features), 1.0 / math.sqrt(rank), device, dtype)
        self.bias = init.uniform((out_features,), 1.0 / math.sqrt(in_features), device, dtype) if bias else None

    @classmethod
    def from_linear(cls, linear, rank=None, energy=None):
        """The truncated-SVD factorisation of ``linear`` (same device and dtype), with the rank
        given directly or as the smallest one keeping ``energy`` of Σσ². Raises ValueError when
        that rank would not save parameters."""
        if not isinstance(linear, Linear):
            raise TypeError(f"from_linear expects a minidl.nn.Linear, got {type(linear).__name__}")
        w = np.asarray(linear.weight.numpy(), dtype=np.float64)
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        r = choose_rank(s, rank=rank, energy=energy)
        d_in, d_out = w.shape
        _check_saves(d_in, d_out, r, energy=energy)
        root = np.sqrt(s[:r])
        weight = linear.weight
        layer = cls(d_in, d_out, r, bias=linear.bias is not None, device=weight.device, dtype=weight.dtype)
        layer.A.data = layer.A.xp.asarray(u[:, :r] * root, weight.dtype)
        layer.B.data = layer.B.xp.asarray(root[:, None] * vt[:r], weight.dtype)
        if linear.bias is not None:
            layer.bias.data = layer.bias.xp.array(linear.bias.data)
        layer.training = linear.training
        return layer

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"LowRankLinear({self.in_features}, {self.out_features}, rank={self.rank}): "
                             f"expected input (..., {self.in_features}), got shape {x.shape}")
        y = ops.matmul(ops.matmul(x, self.A), self.B)
        return y if self.bias is None else y + self.bias

    def weight_matrix(self):
        """A @ B as a float64 NumPy array (D_in, D_out): the weight this layer stands for."""
        return np.asarray(self.A.numpy(), np.float64) @ np.asarray(self.B.numpy(), np.float64)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"bias={self.bias is not None}")


def max_useful_rank(d_in, d_out):
    """The largest r with r·(D_in + D_out) < D_in·D_out (0 when even rank 1 saves nothing)."""
    return (d_in * d_out - 1) // (d_in + d_out)


def _check_saves(d_in, d_out, rank, energy=None):
    if rank * (d_in + d_out) >= d_in * d_out:
        why = f" (the smallest rank keeping energy={energy})" if energy is not None else ""
        raise ValueError(
            f"rank {rank}{why} does not save parameters for a {d_in}×{d_out} weight: "
            f"r·(D_in + D_out) = {rank}·({d_in} + {d_out}) = {rank * (d_in + d_out)} ≥ D_in·D_out = "
            f"{d_in * d_out}; the largest rank that saves anything is {max_useful_rank(d_in, d_out)}")


def check_energy(energy, who=""):
    """Refuse an energy (the share of Σσ² to keep) outside (0, 1]; ``who``: the message's prefix."""
    if not (isinstance(energy, (int, float, np.floating)) and 0.0 < energy <= 1.0):
        raise ValueError(f"{who}energy must be in (0, 1], got {energy!r}")


def choose_rank(singular_values, rank=None, energy=None):
    """``rank`` itself (checked against the number of singular values), or the smallest r with
    Σ_{i≤r} σ_i² ≥ energy·Σ σ_i² (σ sorted descending, as ``np.linalg.svd`` returns them)."""
    s = np.asarray(singular_values, dtype=np.float64)
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank= or energy=")
    if rank is not None:
        if not (isinstance(rank, (int, np.integer)) and 1 <= rank <= len(s)):
            raise ValueError(f"rank must be an integer in [1, {len(s)}], got {rank!r}")
        return int(rank)
    check_energy(energy)
    power = s ** 2
    total = power.sum()
    if total == 0.0:  # an all-zero weight: rank 1 represents it exactly
        return 1
    kept = np.cumsum(power) / total
    return int(np.argmax(kept >= energy - 1e-12)) + 1  # 1e-12: exact boundaries survive rounding


@dataclass
class FactorizeReport:
    """One row per Linear seen by ``factorize``: what happened to it and what it costs."""

    name: str
    shape: tuple          # (D_in, D_out)
    rank: int | None      # None when skipped
    params_before: int    # weight + bias
    params_after: int     # A + B + bias (= params_before when skipped)
    rel_error: float      # ‖W − A B‖_F / ‖W‖_F (0.0 when skipped)
    replaced: bool
    reason: str = ""      # why it was skipped

    def __str__(self):
        if not self.replaced:
            return f"{self.name:<24} {str(self.shape):<12} skipped: {self.reason}"
        return (f"{self.name:<24} {str(self.shape):<12} rank {self.rank:<5} params {self.params_before} -> "
                f"{self.params_after} ({self.params_after / self.params_before:.1%}), "
                f"rel. error {self.rel_error:.3g}")


def ranks_of(report):
    """{layer name: rank} of the replaced layers: pass it as ``factorize(fresh, rank=...)`` to
    build a model that a factorised checkpoint loads into."""
    return {row.name: row.rank for row in report if row.replaced}


def replace_modules(model, convert):
    """Replace sub-modules of ``model``: ``convert(name, module)`` returns the replacement or
    None (keep it). Every module of the tree is offered once, parents before children; a
    replacement is put in the same slot of its parent (order kept, so a Sequential still runs
    in order) and at every other place the same module object is referenced (tied layers).
    The root itself is never offered. Returns [(name, old, new)] for the replaced modules.
    """
    tree = list(model.named_modules())
    replaced, new_of = [], {}
    for name, module in tree:
        if name == "" or id(module) in new_of:
            continue
        new = convert(name, module)
        if new is not None:
            new_of[id(module)] = new
            replaced.append((name, module, new))
    for _, parent in tree:
        for child_name, child in list(parent._modules.items()):
            if id(child) in new_of:
                new = new_of[id(child)]
                # not setattr: Module.__setattr__ would move the entry to the end of _modules
                parent._modules[child_name] = new
                object.__setattr__(parent, child_name, new)
    return replaced


def _refuse_root(model, function, alternative, kind=Linear):
    if isinstance(model, kind):
        raise TypeError(f"{function} replaces the {kind.__name__} layers inside a model and cannot replace the "
                        f"model itself; for a single layer use {alternative}")


def _check_ranks(model, rank, energy):
    """Refuse what factorize would skip or round quietly: a rank that is not a whole number >= 1
    (0 skipped every layer, 2.7 became 2), an energy outside (0, 1], a layer name that is no Linear's."""
    ranks = rank.values() if isinstance(rank, dict) else [] if rank is None else [rank]
    wrong = [r for r in ranks if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 1]
    if wrong:
        raise ValueError(f"factorize: a rank is a whole number >= 1, got {wrong[0]!r}")
    if energy is not None:
        check_energy(energy, "factorize: ")
    if isinstance(rank, dict):
        linears = [name for name, module in model.named_modules() if isinstance(module, Linear)]
        unknown = sorted(set(rank) - set(linears))
        if unknown:
            raise ValueError(f"factorize: no Linear named {', '.join(map(repr, unknown))}; the Linears are "
                             f"{', '.join(linears) or 'none'}")


def factorize(model, rank=None, energy=None, min_size=1024):
    """Replace every ``Linear`` inside ``model`` (in place) by its truncated-SVD ``LowRankLinear``.

    rank: an int for every layer, or {layer name: rank} (layers not named are skipped, e.g.
    ``ranks_of(report)`` of an earlier call; a named layer whose rank would not save
    parameters, e.g. rank ≥ min(D_in, D_out), is an error); energy: keep this share of each weight's Σσ²
    (exactly one of the two). Layers whose weight has fewer than ``min_size`` entries (unless a
    rank dict names them), and layers where the rank would not save parameters, are left as they
    are (and reported).
    A given rank larger than min(D_in, D_out) is capped there (and then refused as useless).
    Returns a list of ``FactorizeReport``, one per Linear, in model order.
    """
    _refuse_root(model, "factorize", "LowRankLinear.from_linear(layer, ...)")
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank= or energy=")
    _check_ranks(model, rank, energy)
    report = []

    def convert(name, module):
        if not isinstance(module, Linear):
            return None
        d_in, d_out = module.in_features, module.out_features
        before = d_in * d_out + (d_out if module.bias is not None else 0)

        def skip(reason):
            report.append(FactorizeReport(name, (d_in, d_out), None, before, before, 0.0, False, reason))

        layer_rank = rank.get(name) if isinstance(rank, dict) else rank
        if isinstance(rank, dict) and layer_rank is None:
            return skip("no rank given for this layer")
        if d_in * d_out < min_size and not isinstance(rank, dict):   # a layer named is factorised (it was skipped,
            return skip(f"{d_in * d_out} weights < min_size={min_size}")   # and ranks_of's file then failed to load)
        if layer_rank is not None:
            layer_rank = min(layer_rank, d_in, d_out)
        try:
            new = LowRankLinear.from_linear(module, rank=layer_rank, energy=None if layer_rank else energy)
        except ValueError as e:
            if isinstance(rank, dict):  # a rank asked for this very layer: refuse, don't skip quietly
                raise ValueError(f"factorize: {name}: {e}") from None
            return skip(str(e))
        w = np.asarray(module.weight.numpy(), np.float64)
        norm = np.linalg.norm(w)
        error = float(np.linalg.norm(w - new.weight_matrix()) / norm) if norm > 0 else 0.0
        report.append(FactorizeReport(name, (d_in, d_out), new.rank, before, new.num_parameters(), error, True))
        return new

    replace_modules(model, convert)
    return report

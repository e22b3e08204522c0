"""Structured pruning: remove whole attention heads, feed-forward neurons and recurrent units,
so the weight matrices really shrink (fewer parameters, fewer FLOPs, a smaller file), unlike
the masks of ``prune.py``, which only zero entries of matrices that keep their size.

Named dimensions: D = d_model, h heads of d_head features each, F = d_ff, E the input width
of a recurrent layer, H its hidden size, g its gate blocks (ElmanRNN 1, GRU 3 = [z | r | h̃]),
C classes; a prime (h', F', H') is the size after pruning. Linear weights are (D_in, D_out),
y = x W + b, so a unit's *incoming* weights are a column and its *outgoing* weights a row.

What is sliced away:

    head i, features S_i = [i·d_head, (i+1)·d_head):
        W_q, W_k, W_v (D, h·d_head): columns S_i;   b_q, b_v: entries S_i
        W_o (h·d_head, D): rows S_i                                        h -> h'
    feed-forward neuron j (ff(x) = GELU(x W₁ + b₁) W₂ + b₂):
        W₁ (D, F): column j;  b₁: entry j;  W₂ (F, D): row j                  F -> F'
    recurrent unit j:
        W_x (E, g·H), b (g·H,): column j of every gate block
        U (H, H) -- GRU: U_zr (H, 2H), U_h (H, H): row j and column j of every block
        the classifier's W_out (H, C), the only reader of h: row j             H -> H'

Removing is exact: the pruned model computes what the dense one computes with the unit
silenced -- a head whose value columns are zero (its α V is 0), a neuron whose W₁ column and
b₁ entry are zero (GELU(0) = 0), a unit whose input columns, bias entries and recurrent
columns are zero (from h₀ = 0 it stays 0: ReLU(0) = tanh(0) = 0, and a GRU's h̃ = 0 keeps it
there) -- so whatever it wrote is gone and what read it reads nothing.

Importance, per layer; the ``amount`` fraction with the lowest scores goes, at least one
head / neuron / unit of every layer stays:

    head i     ‖W_v[:, S_i]‖_F · ‖W_o[S_i, :]‖_F   the head adds α (x W_v,i + b_v) W_o,i to
               the output; α only averages the values, so this product bounds the gain of
               the path (the scores Q Kᵀ decide where a head looks, not how much it writes)
    neuron j   ‖W₁[:, j]‖ · ‖W₂[j, :]‖             the same bound for GELU's path
    unit j     ‖incoming_j‖ · ‖outgoing_j‖         incoming: column j of every block of W_x
               and of the recurrent matrices; outgoing: row j of the recurrent matrices and
               of W_out (every weight that reads h_j)

Saving: a pruned model no longer fits a fresh ``build_model(...)`` of its configuration.
``save_structured`` stores its ``structure_of`` with the weights, and ``load_structured``
shrinks a fresh build to that structure (``restructure``) before loading::

    report = prune_heads(model, 0.5); print(report)
    prune_ffn_neurons(model, 0.5)
    save_structured(model, "small.npz", meta={"config": config})
    fresh = build_model("transformer", V, **config); load_structured(fresh, "small.npz")

Build a new optimizer after pruning: the parameters keep their identity but not their shape,
so moments kept by an old one no longer fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ..io import CheckpointError, from_json_array, json_array, read_npz, write_npz
from ..models.base import SentimentModel
from ..nn.linear import Linear
from ..nn.module import pack_bool_arrays, unpack_bool_arrays
from ..nn.recurrent import GRU, ElmanRNN
from ..nn.transformer import MultiHeadSelfAttention, TransformerEncoderLayer
from .prune import MASK_SUFFIX, _load_masked

_STRUCTURE_MARK = "__minidl_structured__"


# --- slicing ------------------------------------------------------------------------------------
def _take(module, param_name, index, axis):
    """Keep the entries ``index`` of ``module.<param_name>`` along ``axis`` (same Parameter
    object, device and dtype), and of its pruning mask if it has one."""
    for tensor in (module._parameters[param_name], module._buffers.get(param_name + MASK_SUFFIX)):
        if tensor is not None:
            tensor.data = tensor.xp.asarray(np.take(tensor.numpy(), index, axis=axis), tensor.dtype)
            tensor.grad = None


def _keep_outputs(linear, index):
    """Keep the outputs ``index`` of a Linear: columns of W, entries of b."""
    _take(linear, "weight", index, 1)
    if linear.bias is not None:
        _take(linear, "bias", index, 0)
    linear.out_features = len(index)


def _keep_inputs(linear, index):
    """Keep the inputs ``index`` of a Linear: rows of W."""
    _take(linear, "weight", index, 0)
    linear.in_features = len(index)


def _in_blocks(index, width, blocks):
    """Position ``index`` inside each of ``blocks`` side-by-side blocks of ``width`` columns."""
    return (np.arange(blocks)[:, None] * width + np.asarray(index)).ravel()


def _values(param):
    """A float64 NumPy copy of a parameter's values."""
    return np.asarray(param.numpy(), np.float64)


# --- attention heads ----------------------------------------------------------------------------
def _attention_layers(model):
    return {name: m for name, m in model.named_modules() if isinstance(m, MultiHeadSelfAttention)}


def _head_scores(attention):
    """(h,) ‖W_v[:, S_i]‖_F · ‖W_o[S_i, :]‖_F."""
    h, d_head, D = attention.num_heads, attention.d_head, attention.d_model
    return (np.linalg.norm(_values(attention.value.weight).reshape(D, h, d_head), axis=(0, 2))
            * np.linalg.norm(_values(attention.out.weight).reshape(h, d_head, D), axis=(1, 2)))


def _keep_heads(attention, heads):
    features = (np.asarray(heads)[:, None] * attention.d_head + np.arange(attention.d_head)).ravel()
    for projection in (attention.query, attention.key, attention.value):
        _keep_outputs(projection, features)
    _keep_inputs(attention.out, features)
    attention.num_heads = len(heads)


# --- feed-forward neurons -----------------------------------------------------------------------
def _feed_forwards(model):
    """{name: Sequential(Linear(D, F), GELU, Dropout, Linear(F, D))} of every encoder layer."""
    return {(f"{name}.feed_forward" if name else "feed_forward"): m.feed_forward
            for name, m in model.named_modules() if isinstance(m, TransformerEncoderLayer)}


def _neuron_scores(ff):
    """(F,) ‖W₁[:, j]‖ · ‖W₂[j, :]‖."""
    return np.linalg.norm(_values(ff[0].weight), axis=0) * np.linalg.norm(_values(ff[3].weight), axis=1)


def _keep_neurons(ff, neurons):
    _keep_outputs(ff[0], neurons)
    _keep_inputs(ff[3], neurons)


# --- recurrent units ----------------------------------------------------------------------------
class _RecurrentLayer(NamedTuple):
    rnn: object   # ElmanRNN or GRU
    out: Linear   # the one reader of the hidden state, Linear(H, C)


def _recurrent_layers(model):
    """{name of the rnn: (rnn, reader)} for every recurrent layer a model (or a model inside
    it) declares prunable (``SentimentModel.prunable_units``): an ElmanRNN / GRU whose states
    only the Linear ``reader`` reads."""
    layers = {}
    for name, module in model.named_modules():
        for unit, (rnn, out) in (module.prunable_units().items() if isinstance(module, SentimentModel) else ()):
            if isinstance(rnn, (ElmanRNN, GRU)) and isinstance(out, Linear):
                layers[f"{name}.{unit}" if name else unit] = _RecurrentLayer(rnn, out)
    return layers


def _hidden_weights(rnn):
    """Names of the hidden-to-hidden weights, each (H, k·H): U (Elman); U_zr, U_h (GRU)."""
    return ("U",) if isinstance(rnn, ElmanRNN) else ("U_zr", "U_h")


def _unit_scores(layer):
    """(H,) ‖incoming_j‖ · ‖outgoing_j‖ (see the module docstring)."""
    rnn, out = layer
    H = rnn.hidden_size
    hidden = [_values(getattr(rnn, name)) for name in _hidden_weights(rnn)]
    incoming = sum((w.reshape(len(w), -1, H) ** 2).sum(axis=(0, 1)) for w in [_values(rnn.W_x), *hidden])
    outgoing = sum((w ** 2).sum(axis=1) for w in [_values(out.weight), *hidden])
    return np.sqrt(incoming * outgoing)


def _keep_units(layer, units):
    rnn, out = layer
    H = rnn.hidden_size
    _take(rnn, "W_x", _in_blocks(units, H, rnn.gates), 1)
    _take(rnn, "b", _in_blocks(units, H, rnn.gates), 0)
    for name in _hidden_weights(rnn):
        _take(rnn, name, _in_blocks(units, H, getattr(rnn, name).shape[1] // H), 1)
        _take(rnn, name, units, 0)
    _keep_inputs(out, units)
    rnn.hidden_size = len(units)


# --- the three kinds ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    function: str                 # the public function, for messages
    size: str                     # the structure's key: "num_heads", "d_ff", "hidden"
    find: Callable                # model -> {name: layer}
    size_of: Callable             # layer -> current size
    scores: Callable              # layer -> (size,) importance
    keep: Callable                # (layer, kept indices ascending) -> None
    linears: Callable             # layer -> the Linears it slices
    missing: str                  # what to say when the model has none


_HEADS = _Kind(
    "prune_heads", "num_heads", find=_attention_layers, size_of=lambda a: a.num_heads, scores=_head_scores,
    keep=_keep_heads, linears=lambda a: (a.query, a.key, a.value, a.out),
    missing="the model has no MultiHeadSelfAttention layers; prune_heads needs a transformer "
            '(build_model("transformer", ...))')
_NEURONS = _Kind(
    "prune_ffn_neurons", "d_ff", find=_feed_forwards, size_of=lambda ff: ff[0].out_features, scores=_neuron_scores,
    keep=_keep_neurons, linears=lambda ff: (ff[0], ff[3]),
    missing="the model has no transformer feed-forward layers (TransformerEncoderLayer.feed_forward); "
            'prune_ffn_neurons needs a transformer (build_model("transformer", ...))')
_UNITS = _Kind(
    "prune_rnn_units", "hidden", find=_recurrent_layers, size_of=lambda layer: layer.rnn.hidden_size,
    scores=_unit_scores, keep=_keep_units, linears=lambda layer: (layer.out,),
    missing="the model has no ElmanRNN or GRU layer declared prunable (SentimentModel.prunable_units); "
            'prune_rnn_units needs a recurrent classifier (build_model("rnn", ...) or build_model("gru", ...))')
_KINDS = (_HEADS, _NEURONS, _UNITS)


@dataclass
class PrunedLayer:
    name: str
    size: str          # what shrank: "num_heads", "d_ff" or "hidden"
    before: int
    after: int
    removed: list      # indices removed, numbered as in the layer before pruning

    @property
    def change(self):
        removed = f" (removed {', '.join(map(str, self.removed))})" if self.removed else ""
        return f"{self.size} {self.before} -> {self.after}{removed}"


@dataclass
class StructuredReport:
    """What a structured pruning call did: one ``PrunedLayer`` per layer, and the model's
    parameter count before and after."""

    function: str
    params_before: int
    params_after: int
    layers: list = field(default_factory=list)

    def __getitem__(self, name):
        return {layer.name: layer for layer in self.layers}[name]

    def __str__(self):
        width = max(len(layer.name) for layer in self.layers)
        lines = [f"{self.function}: parameters {self.params_before:,} -> {self.params_after:,} "
                 f"({self.params_after / self.params_before:.1%})"]
        lines += [f"  {layer.name:<{width}}  {layer.change}" for layer in self.layers]
        return "\n".join(lines)


def _check_amount(kind, amount):
    if not (isinstance(amount, (int, float, np.number)) and 0.0 <= amount < 1.0):
        raise ValueError(f"{kind.function}: amount is the fraction to remove from each layer and must lie in "
                         f"[0, 1), got {amount!r}; e.g. 0.25 removes a quarter (at least one always stays)")


def _lowest(scores, amount):
    """The round(amount·n) lowest-scoring indices (at most n − 1), ascending; ties: lower index."""
    k = min(int(round(amount * len(scores))), len(scores) - 1)
    return sorted(int(i) for i in np.argsort(scores, kind="stable")[:k])


def _prune(model, kind, amount=None, removed=None):
    """Prune every layer of ``kind`` in ``model``: the ``amount`` fraction of lowest scores, or
    exactly ``removed`` ({name: indices}, checked by the caller). Returns the report."""
    layers = kind.find(model)
    if not layers:
        raise ValueError(kind.missing)
    for name, layer in layers.items():
        if not all(isinstance(linear, Linear) for linear in kind.linears(layer)):
            raise ValueError(f"{kind.function}: {name} holds factorised or quantised layers, which cannot be "
                             f"sliced; prune first, then factorize / quantize")
    params_before = model.num_parameters()
    rows = []
    for name, layer in layers.items():
        n = kind.size_of(layer)
        gone = (_lowest(kind.scores(layer), amount) if removed is None
                else sorted({int(i) for i in removed.get(name, ())}))
        if gone:
            kind.keep(layer, np.setdiff1d(np.arange(n), gone))
        rows.append(PrunedLayer(name, kind.size, n, n - len(gone), gone))
    return StructuredReport(kind.function, params_before, model.num_parameters(), rows)


# --- the public functions -----------------------------------------------------------------------
def prune_heads(model, amount=None, heads=None):
    """Remove attention heads from every MultiHeadSelfAttention of ``model``, in place.

    amount: the fraction of each layer's h heads with the lowest ‖W_v[:, S_i]‖_F · ‖W_o[S_i, :]‖_F
    to remove (round(amount·h), at most h − 1: every layer keeps a head); or heads: exactly
    these, {attention module name: [head indices]} (0..h−1, numbered as now; layers not
    named keep theirs). Give one of the two. Returns a ``StructuredReport``.
    """
    if (amount is None) == (heads is None):
        raise ValueError("prune_heads: give exactly one of amount= (the fraction of heads to remove from each "
                         "layer) or heads= ({attention module name: [head indices]})")
    if amount is not None:
        _check_amount(_HEADS, amount)
        return _prune(model, _HEADS, amount=amount)
    layers = _attention_layers(model)
    if not layers:
        raise ValueError(_HEADS.missing)
    for name, indices in heads.items():
        if name not in layers:
            raise ValueError(f"prune_heads: the model has no MultiHeadSelfAttention named {name!r}; "
                             f"its attention layers are {', '.join(map(repr, layers))}")
        h = layers[name].num_heads
        bad = [i for i in indices if not (isinstance(i, (int, np.integer)) and 0 <= i < h)]
        if bad:
            raise ValueError(f"prune_heads: heads[{name!r}] = {list(indices)} names heads that do not exist: "
                             f"{bad}; the layer has {h} heads, numbered 0..{h - 1}")
        if len(set(indices)) == h:
            raise ValueError(f"prune_heads: heads[{name!r}] removes all {h} heads of the layer; keep at least "
                             f"one (remove at most {h - 1})")
    return _prune(model, _HEADS, removed=heads)


def prune_ffn_neurons(model, amount):
    """Remove the ``amount`` fraction of hidden neurons with the lowest ‖W₁[:, j]‖ · ‖W₂[j, :]‖
    from every transformer feed-forward (D -> F -> D), in place (round(amount·F), at most
    F − 1). Returns a ``StructuredReport``."""
    _check_amount(_NEURONS, amount)
    return _prune(model, _NEURONS, amount=amount)


def prune_rnn_units(model, amount):
    """Remove the ``amount`` fraction of hidden units with the lowest ‖incoming‖ · ‖outgoing‖
    from every ElmanRNN / GRU of a recurrent classifier, and the matching rows of the ``out``
    Linear that reads the state, in place (round(amount·H), at most H − 1). Returns a
    ``StructuredReport``."""
    _check_amount(_UNITS, amount)
    readable = {id(layer.rnn) for layer in _recurrent_layers(model).values()}
    unread = [name or type(m).__name__ for name, m in model.named_modules()
              if isinstance(m, (ElmanRNN, GRU)) and id(m) not in readable]
    if unread:
        raise ValueError(f"prune_rnn_units: cannot tell what reads the hidden state of {', '.join(unread)}; "
                         f"it prunes an ElmanRNN/GRU only where, as in minidl's recurrent classifiers, it is "
                         f"a module's `rnn` and that module's `out` Linear is its one reader")
    return _prune(model, _UNITS, amount=amount)


# --- structure, saving and loading ---------------------------------------------------------------
def structure_of(model):
    """{module name: {size name: size}} of every prunable module of ``model`` (JSON-able):
    {"encoder.layers.0.attention": {"num_heads": 3}, "encoder.layers.0.feed_forward":
    {"d_ff": 96}, "rnn": {"hidden": 40}}. Every such module is listed, pruned or not: a
    module's own sizes cannot tell what it was built with, and ``restructure`` leaves the
    ones that already fit alone."""
    return {name: {kind.size: int(kind.size_of(layer))} for kind in _KINDS for name, layer in kind.find(model).items()}


def restructure(model, structure):
    """Shrink the prunable modules of a freshly built ``model`` to ``structure`` (from
    ``structure_of``), in place, so that a pruned model's state dict fits it. The first h',
    F', H' heads / neurons / units are kept: their values do not matter, load the weights
    next. Returns ``model``."""
    layers = {name: (kind, layer) for kind in _KINDS for name, layer in kind.find(model).items()}
    for name, sizes in structure.items():
        if name not in layers:
            raise ValueError(f"restructure: the model has no prunable module {name!r}; build it with the "
                             f"configuration of the model whose structure this is")
        kind, layer = layers[name]
        current, size = kind.size_of(layer), sizes.get(kind.size)
        if set(sizes) != {kind.size} or not (isinstance(size, int) and 1 <= size <= current):
            raise ValueError(f"restructure: {name} has {kind.size}={current} and can only shrink to a size in "
                             f"1..{current}, but the structure asks for {sizes}; build the model with the "
                             f"configuration of the model whose structure this is")
        if size < current:
            kind.keep(layer, np.arange(size))
    return model


def save_structured(model, path, meta=None):
    """Write the (pruned) model's state dict and its ``structure_of`` (plus ``meta``, anything
    JSON-able, e.g. the build configuration) to an ``.npz``: atomic, no pickle. Returns
    ``path``."""
    header = {"format": "minidl-structured-1", "structure": structure_of(model), "meta": meta}
    write_npz(path, {_STRUCTURE_MARK: json_array(header), **pack_bool_arrays(model.state_dict())})
    return path


def load_structured(model, path):
    """Load a ``save_structured`` file into a fresh build of the pruned model's configuration:
    ``restructure`` it to the saved structure, then load the weights (and pruning masks, if
    the file has them). Returns the saved ``meta``."""
    state = unpack_bool_arrays(read_npz(path))
    if _STRUCTURE_MARK not in state:
        raise CheckpointError(f"{path!r} is not a structured checkpoint (written by save_structured); "
                              f"load a dense one with model.load(path)")
    header = from_json_array(state.pop(_STRUCTURE_MARK))
    restructure(model, header["structure"])
    _load_masked(model, state)
    return header["meta"]


__all__ = ["PrunedLayer", "StructuredReport", "load_structured", "prune_ffn_neurons", "prune_heads",
           "prune_rnn_units", "restructure", "save_structured", "structure_of"]

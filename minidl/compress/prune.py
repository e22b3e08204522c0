"""Magnitude pruning with masks that are saved, survive reloading, and really shrink the file.

A pruned weight ``W`` gets a boolean mask buffer of its shape next to it on the module that
owns it (``weight`` -> ``weight_mask``), so the mask is part of the state dict::

    W ← W ⊙ M                                  (apply_masks: after every optimizer step)

One-shot pruning (global: one threshold over all the weights together; per layer: one
threshold per weight) zeroes the ``amount`` fraction of the smallest |w|. ``amount`` is the
*target sparsity* of the weights considered: weights already pruned stay pruned (masks
multiply) and count towards it, so pruning to 0.5 and then to 0.2 leaves 0.5 (unlike
``torch.nn.utils.prune``, whose repeated calls compound on the survivors).

Gradual magnitude pruning (Zhu & Gupta, 2017), the schedule of "Prune Once for All"::

    s_t = s_f + (s_i − s_f) · (1 − (t − t0) / (t_end − t0))³     for t0 ≤ t ≤ t_end

``GradualPruning`` prunes to s_t every ``every`` steps and re-applies the masks after every
optimizer step, also after ``t_end`` (the locked mask while fine-tuning).

Which weights (``scope``): ``"linear"`` (the default) every Linear's weight; ``"all"`` the
Linears and the Embedding tables (``weight_matrices(model)``); or name them with
``parameters=[...]``. Keep embedding tables out of a *global* threshold: their N(0, 1) entries
dwarf the ±1/√D of the Linears, so 20 % global pruning over both removes almost all of some
Linears (e.g. 99.8 % of the FFN output matrices of a small transformer) and little of the table.
The returned ``SparsityReport`` records the scope.

On disk: ``model.save`` keeps dense weights (zeros included) plus the masks, packed to 1 bit
per weight (``Module.save`` packs boolean buffers), so it is ≈ 1/32 larger than the dense
file. ``save_sparse`` stores, per masked weight, only the kept values, a bitmask
(``np.packbits``, 1 bit per weight) and the shape: at 90 % sparsity a float32 weight costs
0.1·4 + 1/8 = 0.525 bytes per entry instead of 4 (≈ 0.13×). It then deflates the archive
(zip's LZ77 + Huffman coding, the entropy-coding stage of Deep Compression, Han et al. 2016):
a 10 %-dense bitmask carries only H(0.1) ≈ 0.47 bits of information per weight, and deflate
brings its 1 bit to ≈ 0.55; int8 values shrink a little too (their histogram is peaked),
float32 ones hardly at all::

    report = prune_global_magnitude(model, 0.9)
    print(format_report(sparsity_report(model)))
    save_sparse(model, "pruned.npz")                       # really smaller
    fresh = build_model(); load_sparse(fresh, "pruned.npz")  # creates the masks itself
    model.save("dense.npz"); load_pruned(build_model(), "dense.npz")  # same, dense checkpoint
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autograd.tensor import Tensor
from ..io import CheckpointError, read_npz, write_npz
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import unpack_bool_arrays
from ..train.loop import Callback

MASK_SUFFIX = "_mask"
_SPARSE_MARK = "__minidl_sparse__"
_VALUES, _BITS, _SHAPE = ".__sparse_values__", ".__sparse_bits__", ".__sparse_shape__"
_NO_MASK = ".__sparse_nomask__"  # stored sparse by its zeros (an int8 weight), no mask to restore
SCOPES = ("linear", "all")  # which weights pruning considers by default: every Linear's, or also the Embedding tables


# --- which weights ----------------------------------------------------------------------------
def _check_scope(scope, parameters):
    """Refuse an unknown ``scope`` and a non-default scope next to an explicit ``parameters``
    list (which of the two would pick the weights?)."""
    if scope not in SCOPES:
        raise ValueError(f'scope must be "linear" (every Linear weight) or "all" (the Linear weights and the '
                         f'Embedding tables: weight_matrices(model)), got {scope!r}')
    if parameters is not None and scope != "linear":
        raise ValueError(f"give scope={scope!r} or parameters=[...], not both: parameters names the weights "
                         f"to prune itself")


def _module_weights(model, kinds):
    """Dotted names of the ``weight`` of every module of the given ``kinds``, in module order."""
    return [(f"{name}.weight" if name else "weight") for name, module in model.named_modules()
            if isinstance(module, kinds)]


def _scope_of(model, names, scope, parameters):
    """The scope to record in the report: ``scope`` itself, or for an explicit ``parameters``
    list "linear" / "all" when it names exactly those weights, "custom" otherwise."""
    if parameters is None:
        return scope
    names = set(names)
    if names == set(_module_weights(model, (Linear,))):
        return "linear"
    return "all" if names == set(_module_weights(model, (Linear, Embedding))) else "custom"


def _targets(model, parameters=None, scope="linear"):
    """[(dotted name, module, parameter name)] to prune: by ``scope`` every Linear's weight
    ("linear") or also every Embedding table ("all"), or the given dotted parameter names
    ("0.weight") / (module, "weight") pairs."""
    _check_scope(scope, parameters)
    modules = dict(model.named_modules())
    if parameters is None and scope == "all":
        parameters = weight_matrices(model)
    if parameters is None:
        parameters = _module_weights(model, (Linear,))
        if not parameters:
            raise ValueError(f"nothing to prune: {type(model).__name__} has no Linear layer; name the weights "
                             f'with parameters=[...], or scope="all" to prune the Embedding tables too')
    by_id = {id(m): name for name, m in modules.items()}
    targets = []
    for item in parameters:
        if isinstance(item, str):
            module_name, _, param_name = item.rpartition(".")
            if module_name not in modules or param_name not in modules[module_name]._parameters:
                raise KeyError(f"no parameter {item!r} in {type(model).__name__}")
            targets.append((item, modules[module_name], param_name))
        else:
            module, param_name = item
            if id(module) not in by_id or param_name not in module._parameters:
                raise KeyError(f"({type(module).__name__}, {param_name!r}) is not a parameter of this model")
            prefix = by_id[id(module)]
            targets.append(((f"{prefix}.{param_name}" if prefix else param_name), module, param_name))
    if not targets:
        raise ValueError("nothing to prune: the parameter list is empty")
    return targets


def weight_matrices(model, embeddings=True):
    """Dotted names of the weights worth pruning: every Linear's weight and, with
    ``embeddings=True``, every Embedding table (in a small text model the table is most of
    the parameters, so pruning only the Linears hardly shrinks the file). Biases, LayerNorm
    gains and position tables are left dense."""
    names = _module_weights(model, (Linear, Embedding) if embeddings else (Linear,))
    if not names:
        raise ValueError(f"{type(model).__name__} has no Linear{' or Embedding' if embeddings else ''} layer to prune")
    return names


def _masked(model):
    """[(dotted name, module, parameter name)] of every parameter that has a mask buffer."""
    return [((f"{module_name}.{param_name}" if module_name else param_name), module, param_name)
            for module_name, module in model.named_modules() for param_name, param in module._parameters.items()
            if param is not None and get_mask(module, param_name) is not None]


def get_mask(module, param_name="weight"):
    """The mask buffer of ``module.<param_name>`` (a boolean Tensor, True where kept; a model
    pruned by an older minidl and loaded as is may hold 0/1 floats), or None when unpruned."""
    return module._buffers.get(param_name + MASK_SUFFIX)


def _set_mask(module, param_name, mask):
    """Store the NumPy ``mask`` (True / non-zero where kept) as the boolean buffer
    ``<param_name>_mask`` on the parameter's device. Boolean, not the weight's dtype: 1 byte per
    weight in memory, 1 bit on disk (``Module.save`` packs boolean buffers), and ``W *= M``
    works the same on NumPy and torch; ``to(dtype=...)`` leaves it boolean."""
    param = module._parameters[param_name]
    # registering again replaces the old mask in place: same slot of the state dict
    module.register_buffer(param_name + MASK_SUFFIX, Tensor(np.asarray(mask) != 0, device=param.device, dtype="bool"))


def _old_mask(module, param_name):
    mask = get_mask(module, param_name)
    shape = module._parameters[param_name].shape
    return np.ones(shape, dtype=bool) if mask is None else np.asarray(mask.numpy()) != 0


# --- masks --------------------------------------------------------------------------------------
def apply_masks(model, optimizer=None):
    """W ← W ⊙ M, in place, for every masked parameter (call after each optimizer step to keep
    pruned weights at exactly zero), and for the running average of the weights ``optimizer``
    keeps (``average``), which is what is evaluated and kept as best. Returns how many
    parameters were masked."""
    masked = _masked(model)
    for _, module, param_name in masked:
        parameter, mask = module._parameters[param_name], get_mask(module, param_name).data
        parameter.data *= mask
        average = optimizer.state.get(parameter, {}).get("average") if optimizer is not None else None
        if average is not None:
            average *= mask
    return len(masked)


class LockedMasks(Callback):
    """Fine-tune a pruned model with its masks locked (the course project's "prune once, then
    fine-tune"): after every optimizer step W ← W ⊙ M, so pruned weights stay exactly 0 while
    the others learn. Pass it to any training through the core (``fit``, ``distill``, ``train``)."""

    optimizer = None   # set by on_train_begin: its weight average is masked too

    def on_train_begin(self, model, optimizer):
        self.model, self.optimizer = model, optimizer

    def on_step(self, step, loss=None):
        apply_masks(self.model, self.optimizer)
        return False


def _prune(groups, amount):
    """For each group (a list of targets sharing one threshold) zero the ``amount`` fraction of
    the smallest |w|, keeping every already-pruned weight pruned."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must lie in [0, 1) (the fraction of weights to zero; 1 would remove them "
                         f"all), got {amount}")
    for group in groups:
        old = [_old_mask(module, param_name) for _, module, param_name in group]
        # already pruned weights score -1: they are the first to go and stay gone
        scores = np.concatenate([np.where(keep, np.abs(np.asarray(module._parameters[p].numpy(), np.float64)), -1.0)
                                 .ravel() for keep, (_, module, p) in zip(old, group)])
        k = int(round(amount * scores.size))
        new = np.ones(scores.size, dtype=bool)
        if k > 0:
            new[np.argsort(scores, kind="stable")[:k]] = False
        offset = 0
        for keep, (_, module, param_name) in zip(old, group):
            part = new[offset:offset + keep.size].reshape(keep.shape)
            offset += keep.size
            _set_mask(module, param_name, part & keep)
        for _, module, param_name in group:
            module._parameters[param_name].data *= get_mask(module, param_name).data


def prune_global_magnitude(model, amount, parameters=None, scope="linear"):
    """One-shot global unstructured L1 pruning: one threshold over all the weights of ``scope``
    ("linear": every Linear weight; "all": also the Embedding tables) or of ``parameters``
    (dotted names / (module, name) pairs) so that the ``amount`` fraction of them with the
    smallest |w| is zeroed. Returns the ``SparsityReport`` of the pruned weights (with the
    scope). Matrices on different scales get very different sparsities: see the module doc."""
    return _prune_targets(model, amount, parameters, scope, per_layer=False)


def prune_l1_per_layer(model, amount, parameters=None, scope="linear"):
    """Per-layer L1 pruning: each weight (of ``scope`` or ``parameters``, as in
    ``prune_global_magnitude``) separately loses its ``amount`` fraction of smallest |w|.
    Returns the ``SparsityReport`` of the pruned weights (with the scope)."""
    return _prune_targets(model, amount, parameters, scope, per_layer=True)


def _prune_targets(model, amount, parameters, scope, per_layer):
    """Prune the weights of ``scope`` / ``parameters`` to ``amount`` (one threshold, or one per
    weight with ``per_layer``) and return their ``SparsityReport``, the scope recorded."""
    targets = _targets(model, parameters, scope)
    _prune([[t] for t in targets] if per_layer else [targets], amount)
    names = [name for name, _, _ in targets]
    report = sparsity_report(model, names=names)
    report.scope = _scope_of(model, names, scope, parameters)
    return report


# --- gradual pruning ----------------------------------------------------------------------------
def cubic_sparsity(step, initial=0.0, final=0.9, start=0, end=1000):
    """s_t = s_f + (s_i − s_f)(1 − (t − t0)/(t_end − t0))³, with t clamped to [t0, t_end]:
    ``initial`` before ``start``, ``final`` from ``end`` on. Fast early, flat at the end."""
    if end <= start:
        return float(final if step >= start else initial)
    progress = min(max((step - start) / (end - start), 0.0), 1.0)
    return float(final + (initial - final) * (1.0 - progress) ** 3)


class GradualPruning(LockedMasks):
    """Gradual magnitude pruning as a ``fit`` callback (or call ``on_step`` yourself right after
    ``optimizer.step()``): at steps start, start+every, ... and at ``end`` it prunes to
    ``cubic_sparsity(step)``; after *every* step it re-applies the masks (``LockedMasks``), so
    pruned weights stay exactly zero, also after ``end`` (locked mask).

    ``scope`` / ``parameters`` pick the weights as in ``prune_global_magnitude`` ("linear" by
    default). ``threshold="global"``: one threshold over all of them; ``"layer"``: every weight
    matrix to the same sparsity. Prefer "layer" when the matrices live on different scales (an
    embedding table of N(0, 1) rows next to Linears of ±1/√D): one global threshold would empty
    the Linears long before it touched the table. ``report`` is the ``SparsityReport`` of the
    last pruning (None before the first)."""

    def __init__(self, model=None, initial=0.0, final=0.9, start=0, end=1000, every=100, parameters=None,
                 scope="linear", threshold="global"):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if not (0.0 <= initial <= final < 1.0 and 0 <= start <= end):   # it failed mid-training, or never pruned
            raise ValueError(f"GradualPruning prunes from initial to final sparsity, 0 <= initial <= final < 1 "
                             f"(masks only grow), between steps 0 <= start <= end; got initial={initial}, "
                             f"final={final}, start={start}, end={end}")
        if threshold not in ("global", "layer"):
            raise ValueError(f'threshold must be "global" (one threshold) or "layer" (each weight to the same '
                             f'sparsity), got {threshold!r}')
        _check_scope(scope, parameters)
        self.model, self.parameters, self.scope, self.threshold = model, parameters, scope, threshold
        self.initial, self.final, self.start, self.end, self.every = initial, final, start, end, every
        self.history = []  # (step, sparsity) of each pruning
        self.report = None

    def sparsity_at(self, step):
        return cubic_sparsity(step, self.initial, self.final, self.start, self.end)

    def settled(self, step):
        """The schedule has ended: before, the training core keeps no model as best (it would be
        less sparse than ``final``)."""
        return step >= self.end

    def on_train_begin(self, model, optimizer):
        super().on_train_begin(model, optimizer)
        if self.start == 0 and self.initial > 0:   # step 0, before the first optimizer step: the core's steps count
            self.on_step(0)                        # from 1, and steps 1 to every-1 trained the dense model

    def on_step(self, step, loss=None):
        if self.model is None:
            raise RuntimeError("GradualPruning has no model: pass model= or let fit call on_train_begin")
        if self.start <= step <= self.end and ((step - self.start) % self.every == 0 or step == self.end):
            target = self.sparsity_at(step)
            self.report = _prune_targets(self.model, target, self.parameters, self.scope,
                                         per_layer=self.threshold == "layer")
            self.history.append((step, target))
        return super().on_step(step, loss)


# --- reports ------------------------------------------------------------------------------------
@dataclass
class SparsityRow:
    name: str
    parameters: int
    nonzeros: int
    masked: bool

    @property
    def sparsity(self):
        return 1.0 - self.nonzeros / self.parameters if self.parameters else 0.0


@dataclass
class SparsityReport:
    """One row per parameter; ``scope`` says which weights the pruning that made it considered
    ("linear", "all", "custom" for a hand-picked list; None for a plain ``sparsity_report``)."""
    rows: list = field(default_factory=list)
    scope: str | None = None

    @property
    def parameters(self):
        return sum(r.parameters for r in self.rows)

    @property
    def nonzeros(self):
        return sum(r.nonzeros for r in self.rows)

    sparsity = SparsityRow.sparsity   # the same 1 − non-zeros / parameters, of the totals

    def __getitem__(self, name):
        return {row.name: row for row in self.rows}[name]


def sparsity_report(model, names=None):
    """Parameters, non-zeros and sparsity (fraction of exact zeros) of every parameter (or of
    the dotted ``names``), and in total. Rows of masked parameters have ``masked=True``."""
    masked = {name for name, _, _ in _masked(model)}
    wanted = None if names is None else set(names)
    rows = [SparsityRow(name, int(p.size()), int(np.count_nonzero(p.numpy())), name in masked)
            for name, p in model.named_parameters() if wanted is None or name in wanted]
    return SparsityReport(rows)


def format_report(report):
    """The report as a plain-text table."""
    width = max([len("total")] + [len(r.name) for r in report.rows])
    lines = [f"{'parameter':<{width}}  {'size':>10}  {'non-zero':>10}  {'sparsity':>8}  masked"]
    lines += [f"{r.name:<{width}}  {r.parameters:>10}  {r.nonzeros:>10}  {r.sparsity:>8.2%}  "
              f"{'yes' if r.masked else ''}" for r in report.rows]
    lines.append(f"{'total':<{width}}  {report.parameters:>10}  {report.nonzeros:>10}  {report.sparsity:>8.2%}")
    if report.scope is not None:
        lines.append(f"scope: {report.scope}")
    return "\n".join(lines)


# --- saving and loading ---------------------------------------------------------------------
def load_pruned(model, path, strict=True):
    """Load a dense checkpoint written by ``model.save`` from a pruned model into a fresh
    (unpruned) one: registers an all-ones mask for every ``<param>_mask`` in the file first,
    then ``load_state_dict`` fills in the saved masks and weights. Reads masks packed to bits
    (``Module.save`` now) and the 0/1 float masks of older files alike."""
    return _load_masked(model, unpack_bool_arrays(read_npz(path)), strict)


def _load_masked(model, state, strict=True):
    """Register an all-ones mask for every ``<param>_mask`` in ``state`` that ``model`` lacks,
    then ``model.load_state_dict(state, strict=strict)`` fills in the saved masks and weights."""
    modules = dict(model.named_modules())
    for name in [key[:-len(MASK_SUFFIX)] for key in state if key.endswith(MASK_SUFFIX)]:
        module_name, _, param_name = name.rpartition(".")
        module = modules.get(module_name)
        param = None if module is None else module._parameters.get(param_name)
        if param is not None and get_mask(module, param_name) is None:   # all ones, to receive the saved one
            _set_mask(module, param_name, np.ones(param.shape, dtype=bool))
    return model.load_state_dict(state, strict=strict)


def save_sparse(model, path):
    """Write the model with every masked weight stored as its kept values (in the weight's
    dtype, float32 by default), a bitmask (``np.packbits``) and its shape; everything else
    (biases, unmasked weights, other buffers) as is, in a deflated archive. Atomic, no pickle.
    Returns ``path``.

    A pruned then quantised model (``quantize`` replaces the masked Linears, masks and all) has
    int8 ``qweight`` buffers full of zeros: any int8 array at least half zeros is stored the
    same way, by its non-zeros, and comes back without a mask."""
    state = model.state_dict()
    out = {_SPARSE_MARK: np.array(1, dtype=np.int8)}
    for name in {name for name, _, _ in _masked(model)}:
        _store_sparse(out, name, state.pop(name), state.pop(name + MASK_SUFFIX) != 0)
    for name in [n for n, a in state.items() if a.dtype == np.int8 and a.size and np.mean(a == 0) >= 0.5]:
        weight = state.pop(name)
        _store_sparse(out, name, weight, weight != 0)
        out[name + _NO_MASK] = np.array(1, dtype=np.int8)
    out.update(state)
    write_npz(path, out, compress=True)
    return path


def _store_sparse(out, name, weight, keep):
    out[name + _VALUES] = weight[keep]
    out[name + _BITS] = np.packbits(keep.ravel())
    out[name + _SHAPE] = np.array(weight.shape, dtype=np.int64)


def read_sparse(path):
    """The dense state dict (weights with zeros, masks included) of a ``save_sparse`` file."""
    stored = read_npz(path)
    if _SPARSE_MARK not in stored:
        raise CheckpointError(f"{path!r} is not a sparse checkpoint (written by save_sparse); "
                              f"load a dense one with load_pruned(model, path)")
    state = {}
    for key, value in stored.items():
        if key == _SPARSE_MARK or key.endswith((_BITS, _SHAPE, _NO_MASK)):
            continue
        if key.endswith(_VALUES):
            name = key[:-len(_VALUES)]
            shape = tuple(int(n) for n in stored[name + _SHAPE])
            mask = np.unpackbits(stored[name + _BITS], count=int(np.prod(shape))).astype(bool).reshape(shape)
            if int(mask.sum()) != value.size:
                raise CheckpointError(f"{path!r}: {name} has {value.size} values for {int(mask.sum())} kept weights")
            state[name] = np.zeros(shape, dtype=value.dtype)
            state[name][mask] = value
            if name + _NO_MASK not in stored:
                state[name + MASK_SUFFIX] = mask
        else:
            state[key] = value
    return state


def load_sparse(model, path, strict=True):
    """Load a ``save_sparse`` file into ``model`` (a fresh, unpruned one is fine: the masks are
    created). Returns ``load_state_dict``'s ``LoadResult``."""
    return _load_masked(model, read_sparse(path), strict)


__all__ = ["GradualPruning", "SCOPES", "SparsityReport", "SparsityRow", "apply_masks", "cubic_sparsity",
           "format_report", "get_mask", "load_pruned", "load_sparse", "prune_global_magnitude", "prune_l1_per_layer",
           "read_sparse", "save_sparse", "sparsity_report", "weight_matrices"]

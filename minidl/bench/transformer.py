"""``minidl bench transformer``: minidl's transformer encoder against the same model in plain
PyTorch eager, with the same shapes and the same starting weights, measured in the same run.

The model is the compression course's teacher shape, ``TransformerClassifier(V, d_model=128,
num_heads=4, num_layers=2, d_ff=256, max_len=T, pooling="mean", dropout=0.1)``: pre-LN
layers, a final LayerNorm, exact GELU, no key bias. Two jobs on it:

* ``classifier``: ids (B, T) -> mean over the real tokens -> logits (B, 2), cross-entropy;
* ``mlm``: ``mlm_head=True``, BERT's masked-LM: about 15 % of the real tokens are replaced by
  a [MASK] id and scored only there, ``masked_lm_logits(ids, mask, positions)`` (N, V) with
  the decoder tied to the embedding table, cross-entropy against the original ids.

Each gets two measures: one training step (forward, loss, backward, Adam lr 1e-3; ms/step and
steps/s) and inference (``eval()``, no graph; reviews/s). The batch: B = 32 random ids from a
vocabulary of V = 20,000, each review of a random length between T/2 and T, padded with id 0
to T (mask 1.0 on real tokens), for T = 128, 256 and 512.

The PyTorch side is built here from ``torch.nn.Embedding``, a learned position table and
``torch.nn.TransformerEncoder(TransformerEncoderLayer(D, h, F, dropout, activation="gelu",
batch_first=True, norm_first=True), L, norm=LayerNorm(D), enable_nested_tensor=False)`` with
``src_key_padding_mask``, the same mean pooling, a Linear head (and for the MLM the same head
tied to the embedding table), ``torch.optim.Adam``. Its weights are copied from the minidl
model (``copy_weights``): minidl's Linear stores W as (D_in, D_out), torch's as (D_out, D_in);
torch packs W_q, W_k, W_v as the rows of one (3D, D) ``in_proj_weight``; minidl has no key
bias, so torch's is set to 0 (the softmax cancels it, so it changes nothing later either).
Dropout is the same on both sides, in the same places; its random draws differ, which changes
no amount of work. At inference PyTorch takes its fused "fast path" encoder kernel (eval
mode, no grad), which is what a PyTorch user gets.

Before each T is timed, ``check_agreement`` builds every side with dropout 0 and compares
their logits and first-step losses (and the loss after one Adam step, which also checks the
gradients and the update) to 1e-4 relative, on the first 4 reviews' worth of a batch at the
full width T: llm.c's "whole training step against PyTorch" check. A disagreement stops the
run with a one-line error, since a ratio between models that compute different things means
nothing.

Contenders: on the CPU minidl on NumPy (device "cpu"), minidl on torch-CPU (device
"torch") and PyTorch; with ``--device cuda`` minidl on "cuda" and PyTorch on CUDA
(synchronised before every clock reading). They run interleaved, round by round, in one
process, and each time is the median over the rounds. ratio = minidl throughput / PyTorch
throughput (> 1: minidl is faster).

Peak memory ("MiB" columns): on the CPU, each contender runs again in a FRESH process
(multiprocessing "spawn"), so no other contender's freed memory or allocator cache can hide
its own. There it first runs both jobs once on a tiny model (libraries, code paths and thread
pools loaded on first use are start-up, not the model's cost), builds its model and batch,
resets the kernel's resident-set high-water mark (``/proc/self/clear_refs``; where that is
missing, ``ru_maxrss`` after setup is the base), runs two inference passes and reads the
high-water mark (inference), then two training steps and reads it again (training). Each
figure is the peak resident memory ABOVE the built model and batch: activations kept for
backward, gradients, Adam's moments, temporaries and whatever the allocator keeps cached.
On CUDA it is ``torch.cuda.max_memory_allocated`` above what was allocated before, measured
the same way but in the benchmark's own process (the allocator counts live tensors only, so
the other contenders cannot hide anything there); device memory only.
"""
from __future__ import annotations

import json
import sys
import time
from typing import NamedTuple

import numpy as np
import torch

import minidl as md

from .. import optim
from ..errors import MinidlError
from ..data.text import is_count
from ..models.transformer import TransformerClassifier
from .threads import describe, limit_threads, thread_info
from .timing import time_interleaved

MODELS = ("classifier", "mlm")
SHAPE = dict(d_model=128, num_heads=4, num_layers=2, d_ff=256)   # the compression course's teacher
CLASSES, LR, MASK_RATE = 2, 1e-3, 0.15
PAD_ID, MASK_ID = 0, 1                   # random words are drawn from 2 .. V-1
AGREEMENT_RTOL = 1e-4                    # float32, dropout 0
AGREEMENT_BATCH = 4                      # reviews in the check's batch: full width T, a fraction of the cost
MEMORY_CALLS = 2                         # inference passes, then training steps, in the memory process
DEFAULTS = dict(lengths=(128, 256, 512), batch=32, vocab=20_000, rounds=3, steps=1)
QUICK = dict(lengths=(32, 64), batch=8, vocab=2_000, rounds=2, steps=2)
MEASURES = ("train", "infer")


class Batch(NamedTuple):
    """NumPy arrays: ids (B, T) int64, 0 after each review's end; mask (B, T) float32, 1.0 on
    real tokens; lengths (B,); labels (B,) in {0, 1}; for the MLM, inputs (B, T) the ids with
    [MASK] at the N chosen positions (flat b·T + t), targets (N,) the ids there."""
    ids: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    inputs: np.ndarray
    positions: np.ndarray
    targets: np.ndarray


def make_batch(vocab, batch, T, seed=0):
    """A random padded batch of ``batch`` reviews of lengths in [T/2, T], padded to T."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(T // 2, 1), T + 1, batch)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    ids = np.where(mask > 0, rng.integers(MASK_ID + 1, vocab, (batch, T)), PAD_ID).astype(np.int64)
    # every chosen position shows [MASK] (BERT's 10 % random / 10 % kept change no work)
    chosen = (mask > 0) & (rng.random((batch, T)) < MASK_RATE)
    chosen[0, 0] = True                                          # at least one position to score
    positions = np.flatnonzero(chosen)
    inputs = ids.copy()
    inputs.flat[positions] = MASK_ID
    return Batch(ids, mask, lengths, rng.integers(0, CLASSES, batch), inputs, positions, ids.flat[positions].copy())


def build_minidl(kind, vocab, T, dropout, seed=0, device="cpu", shape=SHAPE):
    """minidl's model, built on the CPU from ``seed`` and moved to ``device``, so every device
    starts from the same weights."""
    md.manual_seed(seed)
    model = TransformerClassifier(vocab, **shape, max_len=T, pooling="mean", dropout=dropout,
                                  mlm_head=kind == "mlm")
    return model.to(device)


class TorchTransformer(torch.nn.Module):
    """The same model in plain PyTorch: x = dropout(E[ids] + P[:T]) (B, T, D) ->
    TransformerEncoder (pre-LN, GELU, final LayerNorm) -> mean over real tokens -> dropout ->
    Linear (B, 2); the MLM head LN(GELU(h W_t + b_t)) Eᵀ + b at chosen positions (N, V)."""

    def __init__(self, vocab, max_len, dropout, mlm_head, d_model, num_heads, num_layers, d_ff):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, d_model, padding_idx=PAD_ID)
        self.position = torch.nn.Parameter(torch.zeros(max_len, d_model))
        self.dropout = torch.nn.Dropout(dropout)
        layer = torch.nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers, norm=torch.nn.LayerNorm(d_model),
                                                   enable_nested_tensor=False)
        self.out = torch.nn.Linear(d_model, CLASSES)
        if mlm_head:
            self.transform = torch.nn.Sequential(torch.nn.Linear(d_model, d_model), torch.nn.GELU(),
                                                 torch.nn.LayerNorm(d_model))
            self.mlm_bias = torch.nn.Parameter(torch.zeros(vocab))

    def encode(self, ids, mask):
        """ids (B, T), mask (B, T) -> h (B, T, D)."""
        x = self.dropout(self.embedding(ids) + self.position[:ids.shape[1]])
        return self.encoder(x, src_key_padding_mask=mask == 0)

    def forward(self, ids, mask):
        h = self.encode(ids, mask)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)     # (B, D)
        return self.out(self.dropout(pooled))

    def masked_lm_logits(self, ids, mask, positions):
        h = self.encode(ids, mask).reshape(-1, self.embedding.embedding_dim)[positions]       # (N, D)
        return torch.nn.functional.linear(self.transform(h), self.embedding.weight, self.mlm_bias)


def _parameter_pairs(ours, theirs):
    """[(torch parameter, NumPy array it must hold)] for every weight, in torch's layout."""
    def transposed(linear):     # minidl (D_in, D_out) -> torch (D_out, D_in)
        return linear.weight.numpy().T

    def linear(torch_linear, mine):
        return [(torch_linear.weight, transposed(mine)), (torch_linear.bias, mine.bias.numpy())]

    def norm(torch_norm, mine):
        return [(torch_norm.weight, mine.weight.numpy()), (torch_norm.bias, mine.bias.numpy())]

    pairs = [(theirs.embedding.weight, ours.embedding.weight.numpy()), (theirs.position, ours.position.weight.numpy()),
             *norm(theirs.encoder.norm, ours.encoder.final_norm), *linear(theirs.out, ours.out)]
    for mine, layer in zip(ours.encoder.layers, theirs.encoder.layers):
        attention, ff = mine.attention, mine.feed_forward
        D = attention.d_model
        pairs += [
            (layer.self_attn.in_proj_weight,                           # rows: q, k, v
             np.concatenate([transposed(attention.query), transposed(attention.key), transposed(attention.value)])),
            (layer.self_attn.in_proj_bias,                             # no key bias in minidl
             np.concatenate([attention.query.bias.numpy(), np.zeros(D, np.float32), attention.value.bias.numpy()])),
            *linear(layer.self_attn.out_proj, attention.out), *linear(layer.linear1, ff[0]),
            *linear(layer.linear2, ff[3]), *norm(layer.norm1, mine.norm1), *norm(layer.norm2, mine.norm2)]
    if ours.mlm_head is not None:
        pairs += [*linear(theirs.transform[0], ours.mlm_head.transform[0]),
                  *norm(theirs.transform[2], ours.mlm_head.transform[2]), (theirs.mlm_bias, ours.mlm_head.bias.numpy())]
    return pairs


def copy_weights(ours, theirs):
    """Give the PyTorch model exactly the minidl model's weights."""
    with torch.no_grad():
        for parameter, value in _parameter_pairs(ours, theirs):
            if tuple(parameter.shape) != value.shape:
                raise MinidlError(f"weight copy: torch {tuple(parameter.shape)} <- minidl {value.shape}")
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return theirs


def _jobs(kind, model, batch, tensor, classify, opt, loss_fn, no_grad):
    """{"train": one Adam step -> loss, "infer": one eval forward -> logits}: the same two jobs
    for either framework, given its ``tensor`` (a NumPy array -> its tensor on the device),
    ``classify`` (ids, mask, lengths -> the class logits), ``loss_fn`` (logits, targets) and
    its ``no_grad`` context."""
    ids, mask, lengths, labels, inputs, positions, targets = map(tensor, batch)

    def logits():
        return model.masked_lm_logits(inputs, mask, positions) if kind == "mlm" else classify(ids, mask, lengths)

    def train():
        model.train()
        loss = loss_fn(logits(), targets if kind == "mlm" else labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def infer():
        model.eval()
        with no_grad():
            return logits()
    return {"train": train, "infer": infer}


def sides(device):
    """{side name: minidl device, or None for PyTorch (which runs on ``device``)}."""
    if device == "cpu":
        return {"minidl NumPy": "cpu", "minidl torch-CPU": "torch", "PyTorch": None}
    return {"minidl CUDA": device, "PyTorch CUDA": None}


def side_jobs(side, kind, vocab, T, batch, dropout, device="cpu", seed=0, shape=SHAPE):
    """{"train": fn, "infer": fn} of one side, its model built from ``seed`` (PyTorch's copied
    from a minidl model built from it)."""
    minidl_device = sides(device)[side]
    if minidl_device is None:
        theirs = copy_weights(build_minidl(kind, vocab, T, dropout, seed, shape=shape),
                              TorchTransformer(vocab, T, dropout, kind == "mlm", **shape)).to(device)
        return _jobs(kind, theirs, batch, lambda a: torch.from_numpy(a).to(device),
                     lambda ids, mask, lengths: theirs(ids, mask), torch.optim.Adam(theirs.parameters(), lr=LR),
                     torch.nn.functional.cross_entropy, torch.inference_mode)
    ours = build_minidl(kind, vocab, T, dropout, seed, minidl_device, shape)
    return _jobs(kind, ours, batch, lambda a: md.tensor(a, device=minidl_device),
                 lambda ids, mask, lengths: ours(ids, mask, lengths).logits, optim.Adam(ours.parameters(), lr=LR),
                 md.cross_entropy, md.no_grad)


def contenders(kind, vocab, T, batch, dropout, device="cpu", seed=0, shape=SHAPE):
    """{side: {"train": fn, "infer": fn}} over the same batch and the same starting weights."""
    return {side: side_jobs(side, kind, vocab, T, batch, dropout, device, seed, shape) for side in sides(device)}


def _numpy(logits):
    """A minidl Tensor's or a torch tensor's values as a NumPy array (inference returns either,
    left on its device so that the timing includes no copy to the host)."""
    return logits.numpy() if isinstance(logits, md.Tensor) else logits.detach().cpu().numpy()


def _relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(b))))


def first_steps(kind, vocab, T, batch, device="cpu", seed=0, shape=SHAPE):
    """With dropout 0, for each side: the logits, the first training step's loss and the loss
    of the step after it (after one Adam update)."""
    # the logits come from inference (torch's fused fast path), the losses from training
    # (its ordinary path), so both of torch's paths are checked against ours
    return {name: {"logits": _numpy(job["infer"]()), "loss": job["train"](), "second loss": job["train"]()}
            for name, job in contenders(kind, vocab, T, batch, 0.0, device, seed, shape).items()}


def check_agreement(kind, vocab, T, batch, device="cpu", seed=0, rtol=AGREEMENT_RTOL, shape=SHAPE):
    """Stop with a one-line MinidlError unless every minidl side matches PyTorch on the first
    step (loss and logits) and the step after; returns {side: {what: relative error}}."""
    results = first_steps(kind, vocab, T, batch, device, seed, shape)
    reference = results.pop(next(name for name in results if name.startswith("PyTorch")))
    errors = {}
    for name, result in results.items():
        errors[name] = {what: _relative(result[what], expected) for what, expected in reference.items()}
        worst = max(errors[name], key=errors[name].get)
        if errors[name][worst] > rtol:
            raise MinidlError(f"{name} and PyTorch disagree before timing ({kind}, T={T}, "
                              f"dropout 0): {worst} relative error {errors[name][worst]:.2e} > {rtol:.0e} "
                              f"(minidl loss {result['loss']:.6f}, PyTorch {reference['loss']:.6f}); the "
                              f"models compute different things, so no ratio would mean anything")
    return errors


def _synchronise(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_jobs(jobs, rounds, steps, device="cpu", log=None, label="bench transformer"):
    """{side: {measure: median seconds per call}}: every side's job run ``steps`` times per
    round, the sides interleaved within each round so a noisy moment hits all of them
    (``timing.time_interleaved``: a warm-up call each for allocators, thread pools and Adam's state;
    ``log``: a "round i/N" line per round, as the other benches print: a (model, T) was ~40 s of silence)."""
    times = time_interleaved({(name, measure): job[measure] for name, job in jobs.items() for measure in MEASURES},
                             rounds, steps, log=log, label=label, pause=0.1, prime=False,
                             sync=lambda: _synchronise(device))
    return {name: {measure: times[name, measure] for measure in MEASURES} for name in jobs}


# --- peak memory -----------------------------------------------------------------------------

def _rss_peak_bytes():
    """The resident-set high-water mark (VmHWM) of this process, in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            return next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")), None)
    except OSError:
        return None


def _reset_rss_peak():
    """Set the high-water mark to the current resident set (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _max_rss_bytes():
    import resource

    scale = 1 if sys.platform == "darwin" else 1024      # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _measure_memory(kind, side, vocab, T, batch_size, dropout, device, seed, threads, shape):
    """In this (fresh) process: {"infer": bytes, "train": bytes} of peak memory above the built
    model and batch, for one side (see the module docstring)."""
    with limit_threads(threads):
        # a tiny model first loads the code, libraries and thread pools both jobs need, so the
        # figures below are what this model's size costs, not the process's one-time start-up
        warm_up = side_jobs(side, kind, MASK_ID + 3, 4, make_batch(MASK_ID + 3, 2, 4, seed), dropout, device, seed,
                            shape)
        for measure in MEASURES:
            warm_up[measure]()
        del warm_up
        job = side_jobs(side, kind, vocab, T, make_batch(vocab, batch_size, T, seed), dropout, device, seed, shape)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base, peak = torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated
        elif _reset_rss_peak() and _rss_peak_bytes() is not None:
            base, peak = _rss_peak_bytes(), _rss_peak_bytes
        else:
            base, peak = _max_rss_bytes(), _max_rss_bytes
        growth = {}
        for measure in ("infer", "train"):        # inference first: training's peak would hide it
            for _ in range(MEMORY_CALLS):
                job[measure]()
            _synchronise(device)
            growth[measure] = max(peak() - base, 0)
    return growth


def peak_memory(kind, side, vocab, T, batch_size, dropout, device="cpu", seed=0, threads=None, shape=SHAPE):
    """``_measure_memory`` in a fresh spawned process on the CPU (in this one on CUDA, where
    the allocator's own statistics are exact)."""
    args = (kind, side, vocab, T, batch_size, dropout, device, seed, threads, shape)
    if device.startswith("cuda"):
        return _measure_memory(*args)
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_memory, args)


# --- the run and its report ------------------------------------------------------------------

def run(models=MODELS, lengths=DEFAULTS["lengths"], batch=DEFAULTS["batch"], vocab=DEFAULTS["vocab"], dropout=0.1,
        rounds=DEFAULTS["rounds"], steps=DEFAULTS["steps"], device="cpu", memory=True, seed=0, threads=None,
        progress=None, shape=None):
    """The whole benchmark -> a JSON-ready dict: settings, threads, the agreement check, and
    one row per (model, T, measure) with each side's seconds, throughput, ratio and memory.
    ``shape``: {d_model, num_heads, num_layers, d_ff}, any of them; the rest from SHAPE."""
    _check_device(device)
    shape = _shape(shape)
    _check_sizes(models, lengths, batch, vocab, dropout, rounds, steps)
    log = progress or (lambda line: None)
    started = time.perf_counter()
    result = {"settings": dict(models=list(models), lengths=list(lengths), batch=batch, vocab=vocab, dropout=dropout,
                               rounds=rounds, steps=steps, device=device, seed=seed, **shape),
              "sides": list(sides(device)), "agreement": {}, "rows": []}
    with limit_threads(threads):
        result["threads"] = thread_info()
        for kind in models:
            for T in lengths:
                log(f"bench transformer: {kind} T={T}: checking minidl against PyTorch ...")
                result["agreement"][f"{kind} T={T}"] = check_agreement(
                    kind, vocab, T, make_batch(vocab, min(batch, AGREEMENT_BATCH), T, seed), device, seed, shape=shape)
                data = make_batch(vocab, batch, T, seed)
                times = time_jobs(contenders(kind, vocab, T, data, dropout, device, seed, shape), rounds, steps, device,
                                  log=progress, label=f"bench transformer: {kind} T={T}")
                if memory:   # a fresh process per side: ~50 s that were silent
                    log(f"bench transformer: {kind} T={T}: peak memory ({', '.join(times)}) ...")
                memory_by_side = ({side: peak_memory(kind, side, vocab, T, batch, dropout, device, seed, threads, shape)
                                   for side in times} if memory else None)
                result["rows"] += _result_rows(kind, T, batch, times, memory_by_side)
                log(f"bench transformer: {kind} T={T} done ({time.perf_counter() - started:.0f} s): " + ", ".join(
                    f"{side} {by_measure['train'] * 1e3:.0f} ms/step" for side, by_measure in times.items()))
    return result


def _shape(given):
    """SHAPE updated with ``given`` (a dict, or JSON text like '{"d_model": 256, "num_layers": 4}'); a one-line
    MinidlError for an unknown key, a value that is not a whole number >= 1, or heads that do not divide d_model."""
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except json.JSONDecodeError:
            given = None
        if not isinstance(given, dict):
            raise MinidlError("--shape: expected a JSON object like "
                              "'{\"d_model\": 256, \"num_layers\": 4, \"d_ff\": 1024}'")
    shape = {**SHAPE, **(given or {})}
    if unknown := sorted(set(shape) - set(SHAPE)):
        raise MinidlError(f"--shape: unknown keys {unknown}; the keys are {', '.join(SHAPE)}")
    if not all(map(is_count, shape.values())) or shape["d_model"] % shape["num_heads"]:
        raise MinidlError(f"--shape: whole numbers >= 1, with num_heads dividing d_model; got {shape}")
    return shape


def _check_device(device):
    """A one-line MinidlError unless ``device`` is "cpu", or "cuda[:N]" with a GPU present."""
    if device != "cpu" and not device.startswith("cuda"):
        raise MinidlError(f'--device: "cpu" (minidl on NumPy and on torch-CPU against PyTorch) '
                          f'or "cuda" / "cuda:N", got {device!r}')
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MinidlError("--device cuda: no CUDA GPU here (torch.cuda.is_available() is False); use --device cpu")


def _check_sizes(models, lengths, batch, vocab, dropout, rounds, steps):
    """A one-line MinidlError for an unknown model or a size, count or dropout out of range."""
    if set(models) - set(MODELS) or not models:
        raise MinidlError(f"--models: choose from {','.join(MODELS)}, got {','.join(models)}")
    for name, values in (("models", models), ("lengths", lengths)):   # (their rows were printed twice)
        if len(set(values)) < len(values):
            raise MinidlError(f"--{name}: {','.join(map(str, values))} repeats a value; give each once")
    wrong = [f"--lengths must be >= 2 (got {','.join(map(str, lengths)) or 'none'})"] * (min(lengths, default=0) < 2)
    wrong += [f"--{name} must be >= 1 (got {value})" for name, value in (("batch", batch), ("rounds", rounds),
                                                                         ("steps", steps)) if value < 1]
    wrong += [f"--vocab must be > {MASK_ID + 1} (got {vocab})"] * (vocab <= MASK_ID + 1)
    if wrong:   # only what is wrong (it listed every size)
        raise MinidlError("; ".join(wrong))
    if not 0.0 <= dropout < 1.0:
        raise MinidlError(f"--dropout: a probability in [0, 1), got {dropout}")


def _result_rows(kind, T, batch, times, memory_by_side):
    """One result row per measure for one (model, T): each side's ms per call, throughput
    (steps/s or reviews/s), ratio to PyTorch's throughput and peak MiB.

    ``times``: {side: {measure: seconds per call}} from ``time_jobs``; ``memory_by_side``:
    {side: {measure: bytes}} from ``peak_memory``, or None when memory was not measured.
    """
    reference = next(name for name in times if name.startswith("PyTorch"))
    rows = []
    for measure in MEASURES:
        row = {"model": kind, "T": T, "measure": measure,
               "unit": "steps/s" if measure == "train" else "reviews/s", "sides": {}}
        for side, by_measure in times.items():
            seconds = by_measure[measure]
            row["sides"][side] = {
                "ms": seconds * 1e3,
                "per_second": (1 / seconds) if measure == "train" else batch / seconds,
                "ratio": times[reference][measure] / seconds,
                "peak_mib": memory_by_side[side][measure] / 2 ** 20 if memory_by_side is not None else None}
        rows.append(row)
    return rows


def report(result):
    """The table people read."""
    settings, names = result["settings"], result["sides"]
    reference = next(name for name in names if name.startswith("PyTorch"))
    mine = [name for name in names if name != reference]
    lines = _report_preamble(result)
    memory = any(side["peak_mib"] is not None for row in result["rows"] for side in row["sides"].values())
    if memory:
        lines.append("MiB: peak memory above the built model and batch: " + (
            "CUDA allocator's peak" if settings["device"].startswith("cuda") else
            "resident-set high-water mark, each side in a fresh process"))
    columns = _report_columns(names, mine, memory)
    lines.append(f"{'model':<11}{'T':>5}  {'measure':<8}" + "".join(f"{title:>{width}}" for title, width in columns))
    for row in result["rows"]:
        cells = _report_cells(row, names, mine, memory)
        lines.append(f"{row['model']:<11}{row['T']:>5}  {row['measure']:<8}"
                     + "".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns)))
    return "\n".join(lines)


def _report_preamble(result):
    """The lines above the table: the model and settings, the threads, how to read the
    columns, and the worst disagreement found by the check before timing."""
    settings = result["settings"]
    lines = [f"Transformer encoder D={settings['d_model']}, h={settings['num_heads']}, L={settings['num_layers']}, "
             f"F={settings['d_ff']} (pre-LN, GELU), vocabulary {settings['vocab']:,}, batch {settings['batch']}, "
             f"lengths in [T/2, T], dropout {settings['dropout']}, float32, Adam lr {LR:g}, device "
             f"{settings['device']}; median of {settings['rounds']} interleaved rounds x {settings['steps']} calls",
             f"threads: {describe(result['threads'])}",
             "train: one step (forward, loss, backward, Adam) in ms/step (steps/s); infer: reviews/s in eval mode, "
             "no grad; ratio = minidl throughput / PyTorch throughput (> 1: minidl is faster)"]
    checked = max((max(errors.values()) for by_side in result["agreement"].values() for errors in by_side.values()),
                  default=0.0)
    lines.append(f"checked first: with dropout 0 every minidl side gives PyTorch's logits, first-step loss and "
                 f"second-step loss (worst relative difference {checked:.1e})")
    return lines


def _report_columns(names, mine, memory):
    """(title, width) of the table's columns after model, T and measure: every side's time,
    each minidl side's ratio, and (with ``memory``) every side's peak MiB."""
    short = {name: name.replace("minidl ", "") for name in names}
    return ([(name, 20) for name in names] + [(f"ratio {short[name]}", 8 + len(short[name])) for name in mine]
            + ([(f"MiB {short[name]}", 6 + len(short[name])) for name in names] if memory else []))


def _report_cells(row, names, mine, memory):
    """The cells of one result row, in the order of ``_report_columns``."""
    sides = row["sides"]
    cells = [f"{sides[name]['ms']:.1f} ms ({sides[name]['per_second']:.2f}/s)" if row["measure"] == "train"
             else f"{sides[name]['per_second']:.1f} rev/s" for name in names]
    cells += [f"{sides[name]['ratio']:.2f}x" for name in mine]
    cells += [f"{sides[name]['peak_mib']:.0f}" for name in names] if memory else []
    return cells


def _lengths(text):
    """"128,256,512" -> (128, 256, 512); a tuple passes through."""
    if not isinstance(text, str):
        return tuple(text)
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise MinidlError(f"--lengths: expected comma-separated whole numbers like 128,256,512, "
                          f"got {text!r}") from None


def main(args=None):
    sizes = QUICK if getattr(args, "quick", False) else DEFAULTS

    def option(name):  # what the user gave, else the (quick) default
        given = getattr(args, name, None)
        return sizes[name] if given is None else given
    device = getattr(args, "sides_device", getattr(args, "device", "cpu"))   # (the command's; a Python caller's)
    result = run(models=tuple((getattr(args, "models", None) or ",".join(MODELS)).split(",")),
                 lengths=_lengths(option("lengths")), batch=option("batch"), vocab=option("vocab"),
                 dropout=getattr(args, "dropout", 0.1), rounds=option("rounds"), steps=option("steps"),
                 device=device, memory=getattr(args, "memory", True),
                 seed=getattr(args, "seed", 0), threads=getattr(args, "threads", None),
                 progress=lambda line: print(line, file=sys.stderr, flush=True), shape=getattr(args, "shape", None))
    print(json.dumps(result, indent=1) if getattr(args, "json", False) else report(result))
    return result

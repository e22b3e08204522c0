"""Accuracy against SVD rank: factorise a trained model at several ranks and score each.

    ranks = default_ranks(teacher)                  # 2, 4, 8, ... up to full (every matrix dense)
    rows = rank_sweep(lambda: copy_of(teacher), ranks, lambda m: evaluate(m, test), fine_tune=tune)
    print(format_rank_sweep(rows))
    plot_rank_sweep(rows, "runs/rank_sweep")        # runs/rank_sweep.png, runs/rank_sweep.svg

For each rank r, a fresh copy of the teacher has EVERY eligible Linear (weight W (D_in, D_out)
with at least ``min_size`` entries) factorised at once, W ≈ A B with A (D_in, r), B (r, D_out)
(``factorize``). A matrix whose useful maximum is below r stays DENSE: factorising it at
r > max_useful_rank(D_in, D_out) = ⌊(D_in·D_out − 1) / (D_in + D_out)⌋ would store as many
numbers as W or more, so the only sensible "rank r" version of it is W itself (exact, zero
error). Hence "full rank" (r ≥ min(D_in, D_out) of every eligible matrix, see ``full_rank``)
is the unchanged teacher, and per matrix the error falls as r grows and reaches exactly 0
once the matrix turns dense, while the parameter count rises and tops out at the
original's. (Capping r at the useful maximum instead would leave a non-zero error at "full"
rank and a model that is no smaller: the trap of the original projects.)

Each row (a JSON-able dict):

    rank             the rank asked for
    layers           {Linear name: rank} of the factorised matrices (pass as ``factorize(rank=...)``
                     to rebuild the architecture for a saved row)
    factorised, dense  how many eligible matrices were factorised / kept dense
    params, params_original, params_ratio   parameters of the factorised model, of the teacher
    rel_error_mean, rel_error_max   ‖W − A B‖_F / ‖W‖_F over the eligible matrices, measured
                     (a dense matrix counts as 0: it is what the model computes with)
    energy_mean, energy_min   Σ_{i≤r} σ_i² / Σ σ_i² from the teacher's spectra (dense: 1);
                     by Eckart–Young rel_error² = 1 − energy per matrix, up to float32 rounding
    before, after    evaluate(model) before fine-tuning; after ``fine_tune(model)`` (None without)

Aggregating over all eligible matrices (not only the factorised ones) keeps the mean and
the max monotone in r: a matrix turning dense never raises them.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..io import legend_columns, save_figure
from ..nn.linear import Linear
from .lowrank import factorize, max_useful_rank


def eligible_linears(model, min_size=1024):
    """{name: Linear} that a rank sweep factorises: weight (D_in, D_out) with ≥ ``min_size``
    entries and a useful maximum rank ≥ 1 (a smaller one can never save parameters)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, Linear) and m.in_features * m.out_features >= min_size
            and max_useful_rank(m.in_features, m.out_features) >= 1}


def full_rank(model, min_size=1024):
    """The smallest rank at which every eligible matrix of ``model`` is exact: max min(D_in, D_out)."""
    linears = eligible_linears(model, min_size)
    if not linears:
        raise ValueError(f"no Linear with at least min_size={min_size} weights to factorise; lower min_size "
                         f"(--min-size)")
    return max(min(m.in_features, m.out_features) for m in linears.values())


def default_ranks(model, min_size=1024):
    """From 2 to full: the powers of two below the largest useful rank of any eligible matrix,
    that largest useful rank itself (the last rank at which anything is factorised), and
    ``full_rank`` (the dense teacher); e.g. [2, 4, 8, 16, 21, 32] for 32×32 and 32×64 weights."""
    full = full_rank(model, min_size)
    top = max(max_useful_rank(m.in_features, m.out_features) for m in eligible_linears(model, min_size).values())
    return sorted({2 ** k for k in range(1, top.bit_length()) if 2 ** k < top} | {top, full})


def _energy(power, rank):
    total = power.sum()
    return 1.0 if total == 0.0 or rank >= len(power) else float(power[:rank].sum() / total)


def _plain(value):
    """NumPy scalars and arrays inside metric dicts -> Python numbers and lists (JSON-able)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _check_ranks(ranks):
    ranks = list(ranks)
    bad = [r for r in ranks if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1]
    if not ranks or bad:
        raise ValueError(f"rank_sweep: ranks must be a non-empty list of integers ≥ 1, got {ranks!r}")
    return [int(r) for r in ranks]


def rank_sweep(model_factory, ranks, evaluate, fine_tune=None, min_size=1024, on_row=None):
    """One row per rank (see the module docstring for the keys and the dense-above-maximum rule).

    model_factory()   a new model with the teacher's weights (called once per rank, plus once
                      for the teacher's spectra and parameter count)
    ranks             integers ≥ 1, in the order the rows come back
    evaluate(model)   a dict of metrics (e.g. ``lambda m: trainer.evaluate(m, test)``)
    fine_tune(model)  optional: trains the factorised model briefly in place (returns nothing);
                      each row then also holds ``after``, its metrics afterwards
    min_size          Linears with fewer weights are left alone (as in ``factorize``)
    on_row(rows)      optional: called with the rows so far as each rank's row is done
    """
    ranks = _check_ranks(ranks)
    original = model_factory()
    linears = eligible_linears(original, min_size)
    if not linears:
        raise ValueError(f"rank_sweep: no Linear with at least min_size={min_size} weights to factorise; lower "
                         f"min_size (--min-size)")
    # {name: (σ² descending, float64)} of the eligible matrices: the energy each rank keeps
    spectra = {name: np.linalg.svd(np.asarray(m.weight.numpy(), np.float64), compute_uv=False) ** 2
               for name, m in linears.items()}
    params_original = original.num_parameters()
    rows = []
    for rank in ranks:
        model = model_factory()
        if model is original or set(eligible_linears(model, min_size)) != set(linears):
            raise ValueError("rank_sweep: model_factory() must return a NEW, unfactorised copy of the teacher on "
                             "every call (the same object, or one already factorised, came back)")
        # {name: rank} of the matrices factorised at ``rank``; the others (useful maximum < rank) stay dense
        plan = {name: rank for name, m in linears.items() if rank <= max_useful_rank(m.in_features, m.out_features)}
        errors = {row.name: row.rel_error for row in factorize(model, rank=plan, min_size=min_size) if row.replaced}
        row = _row(rank, plan, errors, spectra, model.num_parameters(), params_original)
        row["before"] = _plain(evaluate(model))
        if fine_tune is not None:
            fine_tune(model)
            row["after"] = _plain(evaluate(model))
        rows.append(row)
        if on_row is not None:
            on_row(rows)
    return rows


def _row(rank, plan, errors, spectra, params, params_original):
    error = [errors.get(name, 0.0) for name in spectra]                        # dense: exact
    energy = [_energy(power, plan[name]) if name in plan else 1.0 for name, power in spectra.items()]
    return {"rank": rank, "layers": dict(plan), "factorised": len(plan), "dense": len(spectra) - len(plan),
            "params": int(params), "params_original": int(params_original),
            "params_ratio": params / params_original if params_original else 1.0,
            "rel_error_mean": float(np.mean(error)), "rel_error_max": float(np.max(error)),
            "energy_mean": float(np.mean(energy)), "energy_min": float(np.min(energy)),
            "before": None, "after": None}


def _metric(row, when, metric):
    metrics = row.get(when)
    value = metrics.get(metric) if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, numbers.Real) else None


def format_rank_sweep(rows, metric="accuracy"):
    """A plain-text table: one line per row, ranks ascending; "*" marks a row with every matrix dense
    (the teacher itself). ``metric``: the key of the evaluate() dicts shown, before and after tuning."""
    tuned = any(row.get("after") is not None for row in rows)
    head = (f"{'rank':>6}  {'factorised':>10}  {'params':>10}  {'of orig.':>8}  {'err mean':>8}  {'err max':>8}  "
            f"{'energy':>7}  {metric:>10}" + (f"  {'tuned':>10}" if tuned else ""))
    lines = [head, "-" * len(head)]

    def cell(value, width):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"

    for row in sorted(rows, key=lambda r: r["rank"]):
        rank = f"{row['rank']}" + ("*" if row["factorised"] == 0 else "")
        share = f"{row['factorised']} of {row['factorised'] + row['dense']}"
        line = (f"{rank:>6}  {share:>10}  {row['params']:>10,}  "
                f"{row['params_ratio']:>8.1%}  {row['rel_error_mean']:>8.4f}  {row['rel_error_max']:>8.4f}  "
                f"{row['energy_mean']:>7.4f}  {cell(_metric(row, 'before', metric), 10)}")
        lines.append(line + (f"  {cell(_metric(row, 'after', metric), 10)}" if tuned else ""))
    if any(row["factorised"] == 0 for row in rows):
        lines.append("* every matrix dense: the unchanged teacher")
    return "\n".join(lines)


def plot_rank_sweep(rows, out_prefix, metric="accuracy", title=None):
    """Write ``out_prefix``.png and ``out_prefix``.svg (atomically); returns their paths.

    Three panels: ``metric`` (before and, if any, after fine-tuning) against the rank and
    against the parameter count (a dashed line: the dense teacher's, where a row has it),
    then the relative Frobenius error (mean, max) and the energy kept against the rank.
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state; PNG is drawn by Agg

    if not rows:
        raise ValueError("plot_rank_sweep: no rows to plot")
    rows = sorted(rows, key=lambda r: r["rank"])
    fig = Figure(figsize=(14.5, 4.4), layout="constrained")
    by_rank, by_params, errors = fig.subplots(1, 3)
    _metric_panel(by_rank, rows, "rank", metric)
    _rank_axis(by_rank, rows)
    _metric_panel(by_params, rows, "params", metric)
    by_params.set_xlabel("parameters")
    _error_panel(errors, rows)
    _rank_axis(errors, rows)
    handles, labels = by_rank.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=legend_columns(labels, fig.get_figwidth()),
               frameon=False)
    fig.suptitle(title or f"{metric} against SVD rank (every eligible Linear factorised at once)")
    return save_figure(fig, out_prefix)


def _metric_panel(ax, rows, x, metric):
    for when, label, style in (("before", "factorised", "o-"), ("after", "factorised + fine-tune", "s-")):
        points = [(r[x], _metric(r, when, metric)) for r in rows if _metric(r, when, metric) is not None]
        if points:
            ax.plot(*zip(*points), style, label=label)
    dense = [r for r in rows if r["factorised"] == 0 and _metric(r, "before", metric) is not None]
    if dense:
        ax.axhline(_metric(dense[0], "before", metric), color="grey", linestyle="--", linewidth=0.8,
                   label="dense teacher")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {'rank' if x == 'rank' else 'parameters'}")
    ax.grid(alpha=0.3)


def _error_panel(ax, rows):
    ranks = [r["rank"] for r in rows]
    ax.plot(ranks, [r["rel_error_mean"] for r in rows], "o-", color="C3", label="‖W − AB‖/‖W‖ mean")
    ax.plot(ranks, [r["rel_error_max"] for r in rows], "^--", color="C3", alpha=0.6, label="‖W − AB‖/‖W‖ max")
    ax.plot(ranks, [r["energy_mean"] for r in rows], "s:", color="C2", label="energy kept (mean)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("relative Frobenius error / energy kept")
    ax.set_title("approximation of the weights")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _rank_axis(ax, rows):
    ranks = sorted({r["rank"] for r in rows})
    if ranks[0] > 0 and ranks[-1] / ranks[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set_xticks(ranks, [f"{r}" + ("*" if any(x["rank"] == r and x["factorised"] == 0 for x in rows) else "")
                          for r in ranks])
    ax.set_xlabel("rank (* every matrix dense)")

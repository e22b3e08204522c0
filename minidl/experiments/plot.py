"""Figures of a sweep: test metrics against the hidden size, mean ± std over seeds.

    from minidl.experiments.plot import plot_sweep
    plot_sweep(load_results("runs/sweep/results.jsonl"), "runs/sweep/sweep")   # sweep.png, sweep.svg

One panel per metric, one line per model (a shaded band: ± one std over seeds), the hidden
sizes on a log-2 axis with a tick at each size. When ``hidden`` is a list of layer sizes
(the MLP architecture sweep) the architectures are categories instead: one point per model
with an error bar, next to each other.
"""
from __future__ import annotations

import numbers
import os
import sys

from ..io import legend_columns, save_figure, write_text
from .sweep import (METRIC_NAMES, load_results, plot_prefix, series_label, split_commas, summarise, table_markdown,
                    x_label)

X_NAMES = {"hidden": "hidden size", "embed_dim": "embedding size", "max_length": "words kept per review",
           "lr": "learning rate"}


def plot_sweep(results, out_prefix, metrics=("accuracy", "f1", "auc"), title=None, x="hidden"):
    """Write ``out_prefix``.png and ``out_prefix``.svg (atomically); returns their paths."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, any backend

    metrics = list(metrics)
    rows = summarise(results, x=x, metrics=metrics)
    if not rows:
        raise ValueError("no successful results to plot (every job failed, or the file is empty)")
    series = {}
    for row in rows:
        series.setdefault(series_label(row), []).append(row)
    numeric = all(isinstance(r[x], numbers.Real) and not isinstance(r[x], bool) for r in rows)

    fig = Figure(figsize=(4.3 * len(metrics) + 0.6, 4.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colours = [f"C{i % 10}" for i in range(len(series))]
    for ax, metric in zip(axes, metrics):
        if numeric:
            _lines(ax, series, colours, metric, x)
        else:
            _points(ax, series, colours, metric, x, rows)
        ax.set_title(f"test {METRIC_NAMES.get(metric, metric)}")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=legend_columns(labels, fig.get_figwidth()),
               frameon=False)
    if title != "":   # --title "": none (it gave the default one)
        fig.suptitle(title or _default_title(results, rows, x, numeric))

    return save_figure(fig, out_prefix)


def _lines(ax, series, colours, metric, x):
    sizes = sorted({r[x] for rows in series.values() for r in rows})
    for colour, (label, rows) in zip(colours, series.items()):
        xs = [r[x] for r in rows]
        mean = [r[metric] for r in rows]
        std = [r[metric + "_std"] for r in rows]
        ax.plot(xs, mean, marker="o", color=colour, label=label)
        if len(xs) == 1:   # a band of one point has no width: draw its std as an error bar
            ax.errorbar(xs, mean, yerr=_error_bars(mean, std, metric), color=colour, capsize=4)
        else:
            ax.fill_between(xs, *_band(mean, std, metric), color=colour, alpha=0.18, linewidth=0)
    if sizes[0] > 0 and sizes[-1] / sizes[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
    ax.set_xlabel(X_NAMES.get(x, x))


def _points(ax, series, colours, metric, x, rows):
    categories = list(dict.fromkeys(x_label(r[x]) for r in rows))
    width = 0.7 / len(series)
    for i, (colour, (label, members)) in enumerate(zip(colours, series.items())):
        offset = (i - (len(series) - 1) / 2) * width
        positions = [categories.index(x_label(r[x])) + offset for r in members]
        mean = [r[metric] for r in members]
        ax.errorbar(positions, mean, yerr=_error_bars(mean, [r[metric + "_std"] for r in members], metric),
                    fmt="o", color=colour, capsize=4, markersize=6, label=label)
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(categories) - 0.4)
    ax.set_xlabel("architecture (hidden layer sizes)" if x == "hidden" else x)


def _band(mean, std, metric):
    """(low, high): mean ± std kept where the metric can be, a loss >= 0 and the others in [0, 1]
    (an F1 band was shaded below 0, an accuracy's error bar drawn past 1)."""
    top = float("inf") if metric == "loss" else 1.0
    return [max(m - s, 0.0) for m, s in zip(mean, std)], [min(m + s, top) for m, s in zip(mean, std)]


def _error_bars(mean, std, metric):
    """``_band`` as matplotlib's yerr: the distances below and above each mean."""
    low, high = _band(mean, std, metric)
    return [[m - l for m, l in zip(mean, low)], [h - m for m, h in zip(mean, high)]]


def _default_title(results, rows, x, numeric):
    configs = [r["config"] for r in results if not r.get("error")]
    data = ", ".join(sorted({str(c.get("data")) for c in configs}))
    seeds = sorted({r["seeds"] for r in rows})
    seeds_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    against = "architecture" if x == "hidden" and not numeric else X_NAMES.get(x, x)   # lists of layer sizes
    spread = "1 seed" if seeds == [1] else f"mean ± std over {seeds_text} seeds"   # one seed has no std
    return f"{data}: test metrics against {against} ({spread})"


def main_plot(args):
    """``minidl plot``: PNG, SVG and a Markdown table of a results file; prints the table."""
    try:   # each refusal is one line, and nothing is written
        results = load_results(args.results)
        if args.models:
            wanted = set(split_commas(args.models))
            found = sorted({r.get("config", {}).get("model") for r in results} - {None})
            results = [r for r in results if r.get("config", {}).get("model") in wanted]
            if not results:
                raise ValueError(f"--models {args.models}: {args.results} has no runs of them; it has "
                                 f"{', '.join(found) or 'none'} (nothing was written)")
        metrics = list(dict.fromkeys(split_commas(args.metrics)))   # accuracy,accuracy drew its panel twice
        if unknown := _unknown_axes(results, args.x, metrics):
            raise ValueError(f"{unknown} (nothing was written)")
        out = args.out or plot_prefix(args.results)
        if out.endswith(os.sep) or os.path.isdir(out):   # "figures/" wrote figures/.png, a hidden file
            out = os.path.join(out, "sweep")
        stem, ext = os.path.splitext(out)
        if ext.lower() in (".png", ".svg", ".md"):   # fig.png wrote fig.png.png, fig.png.md
            out = stem
        elif ext[1:].lower() in _figure_formats():    # fig.pdf wrote fig.pdf.png, fig.pdf.svg, fig.pdf.md
            raise ValueError(f"--out {out}: plot writes OUT.png, OUT.svg and OUT.md; give --out without {ext}, "
                             f"like {stem} (nothing was written)")
        if foreign := _not_from_plot(out):
            raise ValueError(f"--out {out}: {foreign} is there and was not written by minidl plot; give another "
                             f"--out, or move it away (nothing was written)")
        paths = plot_sweep(results, out, metrics=metrics, title=args.title, x=args.x)
    except (FileNotFoundError, ValueError) as e:
        print(f"minidl plot: error: {e}", file=sys.stderr)
        return 2
    table = table_markdown(summarise(results, x=args.x, metrics=metrics), x=args.x, metrics=metrics)
    write_text(out + ".md", table + "\n")
    print(table)
    if failed := sum(1 for r in results if r.get("error")):
        print(f"\n({failed} failed jobs left out; their errors are in {args.results})")
    print(f"\nwrote {', '.join(paths)} and {out}.md")
    return 0


def _unknown_axes(results, x, metrics):
    """Why --x or --metrics names nothing the successful ``results`` hold, with the choices; or None."""
    done = [record for record in results if not record.get("error")]
    if not done:
        return None             # nothing to plot: plot_sweep says so
    fields = sorted({key for record in done for key in record["config"]})
    scores = sorted({key for record in done for key, value in record["test"].items()
                     if isinstance(value, numbers.Real) and key != "n"})
    if x not in fields:
        return f"--x {x!r} is not a setting of these runs; choose one of {', '.join(fields)}"
    if not metrics or not set(metrics) <= set(scores):
        return f"--metrics {','.join(metrics)!r}: give comma-separated test metrics of {', '.join(scores)}"
    return None


def _figure_formats():
    """The file types matplotlib can save (pdf, jpg, eps...): an --out ending in one means a figure file,
    which plot does not write, whereas a dot in a plain name (lr0.01) is part of the name."""
    from matplotlib.backend_bases import FigureCanvasBase

    return FigureCanvasBase.get_supported_filetypes()


def _not_from_plot(out):
    """The first of OUT.md, OUT.png, OUT.svg that is there but not from an earlier ``minidl plot``
    (whose OUT.md is its summary table), or None: plot replaces only what it wrote itself, never
    a README.md or a figure of the user's that --out happens to name."""
    table = out + ".md"
    if os.path.exists(table):
        with open(table, encoding="utf-8", errors="replace") as f:
            first = f.readline()
        return None if first.startswith(("| model |", "(no successful results)")) else table
    return next((out + ext for ext in (".png", ".svg") if os.path.exists(out + ext)), None)

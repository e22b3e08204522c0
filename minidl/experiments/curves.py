"""Training curves: train and test loss and accuracy against epochs, from ``minidl train
--test-curve`` results (``results.json``), one column per run (e.g. encoder and decoder).

    minidl curves runs/teacher/results.json runs/decoder/results.json --out curves.png
"""
from __future__ import annotations

import json
import os

from ..io import check_replaceable, is_minidl_figure, write_figure


def read_history(path):
    """(label, history) of a results.json written by ``minidl train`` (or of the --out folder holding
    it); refuses runs without test curves."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    with open(path) as f:
        try:
            result = json.load(f)
        except ValueError:
            result = None
    if not isinstance(result, dict) or not isinstance(result.get("config"), dict) or "test" not in result:
        raise ValueError(f"{path} is not a results.json written by minidl train: give the results.json in a "
                         f"train --out folder")
    history = result.get("history") or []
    if not history or "test_accuracy" not in history[0]:
        raise ValueError(f"{path} has no test curve: train with --test-curve (and evaluations with --eval-every)")
    options = result["config"].get("model_options", {})
    kind = "decoder (causal)" if options.get("causal") else "encoder"
    return f"{result['config']['model']} {kind}, test acc {result['test']['accuracy']:.3f}", history


def plot_curves(paths, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [read_history(p) for p in paths]
    fig, axes = plt.subplots(2, len(runs), figsize=(5 * len(runs), 7), squeeze=False)
    for column, (label, history) in enumerate(runs):
        epochs = [h["epoch"] for h in history]
        for row, metric in enumerate(("loss", "accuracy")):
            ax = axes[row][column]
            ax.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label="train (running mean)")
            ax.plot(epochs, [h[metric] for h in history], "s--", label="validation")
            ax.plot(epochs, [h[f"test_{metric}"] for h in history], "^-", label="test")
            ax.set(xlabel="epoch", ylabel=metric, title=label if row == 0 else "")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    write_figure(fig, out, dpi=130)
    plt.close(fig)
    return out


def main(args):
    import sys

    try:
        if os.path.splitext(args.out)[1].lower() not in ("", ".png", ".svg", ".pdf"):
            raise ValueError(f"--out {args.out}: give a .png, .svg or .pdf file")
        check_replaceable(args.out, is_minidl_figure, "minidl curves")
        print(plot_curves(args.results, args.out))
    except ValueError as e:
        print(f"minidl curves: {e}", file=sys.stderr)
        return 1
    return 0

"""Training curves: train and test loss and accuracy against epochs, from ``minidl train
--test-curve`` results (``results.json``), one column per run (e.g. encoder and decoder).

    minidl curves runs/teacher/results.json runs/decoder/results.json --out curves.png
"""
from __future__ import annotations

import glob
import json
import os
import sys

from ..io import check_replaceable, is_minidl_figure, write_figure


def read_history(path):
    """(label, history, has a validation split, learned from a teacher) of a results.json written by
    ``minidl train`` (or of the --out folder holding it); refuses runs without test curves. The label's
    first line is the run's name: its folder (that of a results.json), or the file's own name
    (teacher.json): runs of one model and size had panels of one title."""
    result = _read_result(path)
    name = os.path.basename(os.path.abspath(path))
    if name == "results.json":
        name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    elif not os.path.isdir(path):
        name = os.path.splitext(name)[0]
    config, test = result["config"], result["test"]
    options = config.get("model_options") if isinstance(config.get("model_options"), dict) else {}
    kind = (f"{'decoder (causal)' if options.get('causal') else 'encoder'}" if config.get("model") == "transformer"
            else f"h={config.get('hidden')}")
    on_test = chosen_on_test(config)
    label = f"{name}\n{config.get('model')} {kind}, test acc {test['accuracy']:.3f}"
    label += ", best chosen on test" if on_test else ""
    return label, result["history"], not on_test, bool(config.get("teacher"))


def chosen_on_test(config):
    """Whether a run's (``config``: results.json's) best was chosen on its test split: --validation 0
    without --validation-data, so its history's "validation" values are the test split's."""
    return isinstance(config, dict) and config.get("validation") == 0 and not config.get("validation_data")


def _read_result(path):
    """The results.json at ``path`` (or in the folder), checked to hold every number the curves draw."""
    path = _results_path(path)
    with open(path) as f:
        try:
            result = json.load(f)
        except ValueError:
            result = None
    if not isinstance(result, dict) or not isinstance(result.get("config"), dict) or "test" not in result:
        raise ValueError(f"{path} is not a results.json written by minidl train: give the results.json in a "
                         f"train --out folder")
    history = result.get("history") or []
    if not (isinstance(history, list) and history and all(isinstance(h, dict) for h in history)
            and "test_accuracy" in history[0]):
        raise ValueError(f"{path} has no test curve: train with --test-curve (and evaluations with --eval-every)")
    lacking = sorted({key for h in history for key in CURVE_KEYS if not isinstance(h.get(key), (int, float))})
    test = result["test"]
    if lacking or not isinstance(test, dict) or not isinstance(test.get("accuracy"), (int, float)):
        raise ValueError(f"{path}: its history lacks {', '.join(lacking) or 'the test accuracy'}; give a "
                         f"results.json as minidl train --test-curve wrote it")
    return result


def _results_path(path):
    """``path``, or the results.json in the folder ``path``; a folder of runs (runs/a/results.json...) is refused
    in one line naming their results (it was "no such file or folder: 'runs/results.json'", of a folder there)."""
    if not os.path.isdir(path):
        return path
    runs = glob.glob(os.path.join(glob.escape(path), "*", "results.json"))
    path = os.path.join(path, "results.json")
    if runs and not os.path.exists(path):
        raise ValueError(f"{os.path.dirname(path)} is a folder of {len(runs)} run{'s' * (len(runs) > 1)}; give "
                         f"{os.path.join(os.path.dirname(path), '*', 'results.json')}")
    return path


CURVE_KEYS = ("epoch", "loss", "accuracy", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


def plot_curves(paths, out):
    from matplotlib.figure import Figure  # no pyplot: no global figure state, any backend

    runs = [read_history(p) for p in paths]
    fig = Figure(figsize=(5 * len(runs), 7))
    axes = fig.subplots(2, len(runs), squeeze=False)
    for column, (label, history, validated, taught) in enumerate(runs):
        epochs = [h["epoch"] for h in history]
        for row, metric in enumerate(("loss", "accuracy")):
            ax = axes[row][column]   # with a teacher the train loss is the distillation loss: no cross-entropy
            train = "train: distillation loss" if taught and metric == "loss" else "train"
            ax.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label=f"{train} (running mean)")
            if validated:
                ax.plot(epochs, [h[metric] for h in history], "s--", label="validation")
            ax.plot(epochs, [h[f"test_{metric}"] for h in history], "^-", label="test")
            ax.set(xlabel="epoch", ylabel=metric, title=label if row == 0 else "")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return write_figure(fig, out, dpi=130)


def main(args):
    try:
        if os.path.splitext(args.out)[1].lower() not in (".png", ".svg", ".pdf"):   # "c" got a PNG named c
            raise ValueError(f"--out {args.out}: give a .png, .svg or .pdf file")
        check_replaceable(args.out, is_minidl_figure, "minidl curves")
        print(plot_curves(args.results, args.out))
    except ValueError as e:
        print(f"minidl curves: {e}", file=sys.stderr)
        return 1
    return 0

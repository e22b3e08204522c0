"""The engine demo: an MLP learns two interleaved spirals, swept over the hidden size.

For each hidden size H and seed: ``x (N, 2) -> Linear(2, H) -> tanh -> Linear(H, H) -> tanh
-> Linear(H, 2)``, full-batch Adam on cross-entropy. Small H cannot bend the decision
boundary around the spirals; the plot shows where capacity becomes enough.
Writes ``results.json`` and ``spirals.png`` (loss curves, accuracy against H).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

import minidl as md
from minidl import nn
from minidl.datasets.toy import two_spirals
from minidl.io import check_replaceable, check_writable, json_keys, write_figure, write_text
from minidl.train.full_batch import accuracy, train_full_batch


def train_one(hidden, seed, steps=1500, lr=0.02, n_per_class=200, device="cpu"):
    """Train one MLP; returns its loss curve and train/test accuracy."""
    x_train, y_train = two_spirals(n_per_class, noise=0.1, seed=seed)
    x_test, y_test = two_spirals(n_per_class, noise=0.1, seed=seed + 1000)
    md.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, hidden, device=device), nn.Tanh(),
                          nn.Linear(hidden, hidden, device=device), nn.Tanh(),
                          nn.Linear(hidden, 2, device=device))
    losses = train_full_batch(model, x_train, y_train, steps, lr, device)
    return {"hidden": hidden, "seed": seed, "losses": list(losses),
            "train_accuracy": accuracy(model, x_train, y_train, device),
            "test_accuracy": accuracy(model, x_test, y_test, device)}


def sweep(hidden_sizes=(2, 4, 8, 16, 32, 64), seeds=(0, 1, 2), steps=1500, device="cpu", log=print):
    runs = []
    for hidden in hidden_sizes:
        for seed in seeds:
            start = time.perf_counter()
            run = train_one(hidden, seed, steps=steps, device=device)
            runs.append(run)
            log(f"hidden {hidden:>3}  seed {seed}  final loss {run['losses'][-1]:.4f}  "
                f"train acc {run['train_accuracy']:.3f}  test acc {run['test_accuracy']:.3f}  "
                f"({time.perf_counter() - start:.1f} s)")
    return runs


def summarise(runs):
    """Mean and sample std (ddof=1; 0 with one seed) over seeds per hidden size, as ``sweep.summarise``."""
    table = []
    for hidden in sorted({r["hidden"] for r in runs}):
        group = [r for r in runs if r["hidden"] == hidden]
        row = {"hidden": hidden, "seeds": len(group)}
        for key in ("train_accuracy", "test_accuracy"):
            values = np.array([r[key] for r in group])
            row[key] = float(values.mean())
            row[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        table.append(row)
    return table


def plot(runs, path):
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: no global figure state, any backend

    table = summarise(runs)
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    colours = colormaps["viridis"](np.linspace(0, 0.9, len(table)))
    for colour, row in zip(colours, table):
        curves = np.array([r["losses"] for r in runs if r["hidden"] == row["hidden"]])
        left.plot(curves.mean(axis=0), color=colour, label=f"H = {row['hidden']}")
    left.set(yscale="log", xlabel="step (full batch)", ylabel="training cross-entropy",
             title="Loss curves (mean over seeds)")
    left.legend()
    hidden = [row["hidden"] for row in table]
    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test (fresh spirals)")):
        right.errorbar(hidden, [row[key] for row in table], yerr=[row[key + "_std"] for row in table],
                       marker="o", capsize=3, label=label)
    right.set(xscale="log", xlabel="hidden size H", ylabel="accuracy", ylim=(0.4, 1.02),
              title="Accuracy against hidden size (mean ± std)")
    right.minorticks_off()
    right.set_xticks(hidden, [str(h) for h in hidden])
    right.legend()
    fig.suptitle("minidl: 2-hidden-layer tanh MLP on two spirals, Adam")
    fig.tight_layout()
    write_figure(fig, path, dpi=110)


def main(args):
    check_writable(args.out, folder=True)
    check_replaceable(os.path.join(args.out, "results.json"), lambda path: {"runs", "summary"} <= json_keys(path),
                      "minidl spirals", f"--out {args.out}:", beside=[os.path.join(args.out, "spirals.png")])
    start = time.perf_counter()
    runs = sweep(args.hidden, args.seeds, steps=args.steps, device=args.device)
    write_text(os.path.join(args.out, "results.json"), json.dumps({"runs": runs, "summary": summarise(runs)}))
    plot(runs, os.path.join(args.out, "spirals.png"))
    print(f"\n{'hidden':>6} {'train acc':>16} {'test acc':>16}")
    for row in summarise(runs):
        print(f"{row['hidden']:>6} {row['train_accuracy']:>9.3f} ± {row['train_accuracy_std']:.3f}"
              f" {row['test_accuracy']:>9.3f} ± {row['test_accuracy_std']:.3f}")
    print(f"\nwrote {args.out}/results.json and {args.out}/spirals.png in {time.perf_counter() - start:.0f} s")
    return 0

"""The negation probe: how far back can each model see a negator?

Train models on the built-in corpus, then score them on reviews that are ALL negated, the
negator exactly d words before the sentiment word, for d = 1..12. In a windowed
self-attention model of radius r the sentiment word sees the negator only when d <= r, but
a word between them sees both while d <= 2r, and its sub-score can undo the sentiment word's:
a well-trained model is right up to about 2r and answers the opposite of the truth beyond,
where no position sees both words. A GRU carries the negation along its state and is not
fooled by distance.

    minidl probe --models attention,gru --out runs/probe     # probe.png, probe.svg, probe.json
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..data.batching import encode_dataset
from ..data.synthetic import make_negation_probe
from ..io import check_replaceable, check_writable, save_figure, write_text
from ..train import TrainConfig, evaluate, fit
from ..train.prepare import prepare

# Settings that learn the built-in corpus in seconds (see README, "The demo").
# (lr 0.005 with patience 3 often stopped the attention model on its plateau before it had
# learnt negation at all, so the outcome hung on the rounding of float sums)
DEFAULTS = dict(data="synthetic", embed_dim=32, hidden=32, lr=0.002, epochs=30, patience=6)


def accuracy_by_distance(model, prepared, distances=range(1, 13), n_per_distance=200, device="cpu"):
    """{d: accuracy on reviews negated at distance d}."""
    probe = make_negation_probe(distances, n_per_distance)
    distance = np.asarray(probe.info["distance"])
    out = {}
    for d in distances:
        subset = encode_dataset(probe.subset(np.flatnonzero(distance == d), f"probe d={d}"), prepared.tokenizer,
                                prepared.vocab)
        out[int(d)] = evaluate(model, subset, device=device)["accuracy"]
    return out


def run(models=("attention", "gru"), seed=0, radius=5, distances=range(1, 13), progress=False, **overrides):
    """{model: {"test": accuracy on the ordinary test split, "by_distance": {d: accuracy}}};
    ``progress``: each model's progress bar (a run takes about half a minute)."""
    results = {}
    for name in models:
        settings = {**DEFAULTS, **overrides, "model": name, "seed": seed}
        if name == "attention":
            settings["model_options"] = {**settings.get("model_options", {}), "radius": radius}
        config = TrainConfig(**settings)
        result = fit(config, progress=progress)
        results[name] = {"test": result.test["accuracy"],
                         "by_distance": accuracy_by_distance(result.model, prepare(config), distances,
                                                             device=config.device)}
    return results


def plot(results, radius, path_prefix):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for name, result in results.items():
        d = sorted(result["by_distance"])
        ax.plot(d, [result["by_distance"][k] for k in d], marker="o", label=f"{name} (test {result['test']:.3f})")
    if "attention" in results:   # (drawn for --models mlp too)
        ax.axvline(radius + 0.5, color="grey", linestyle="--")
        ax.text(radius + 0.7, 0.2, f"attention radius r = {radius}", color="grey")
        ax.axvline(2 * radius + 0.5, color="grey", linestyle=":")
        ax.text(2 * radius + 0.7, 0.6, "2r: no word\nsees both", color="grey")
    ax.axhline(0.5, color="lightgrey", linewidth=1)
    ax.set(xlabel="distance d from the negator to the sentiment word (words)", ylabel="accuracy on negated reviews",
           ylim=(-0.02, 1.02), title="Negation probe on the built-in corpus")
    ax.set_xticks(sorted(next(iter(results.values()))["by_distance"]))
    ax.legend(loc="center left")
    fig.tight_layout()
    save_figure(fig, path_prefix, dpi=110)


def _is_probe_results(path):
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    return isinstance(results, dict) and all(isinstance(r, dict) and "by_distance" in r for r in results.values())


def main(args):
    check_writable(args.out, folder=True)      # before minutes of training, not after
    check_replaceable(os.path.join(args.out, "probe.json"), _is_probe_results, "minidl probe", f"--out {args.out}:",
                      beside=[os.path.join(args.out, f"probe.{ext}") for ext in ("png", "svg")])
    results = run(args.models, seed=args.seed, radius=args.radius, device=args.device, progress=True)
    write_text(os.path.join(args.out, "probe.json"), json.dumps(results, indent=1))
    plot(results, args.radius, os.path.join(args.out, "probe"))
    distances = sorted(next(iter(results.values()))["by_distance"])
    print(f"{'d':>3} " + "".join(f"{name:>11}" for name in results))
    for d in distances:
        print(f"{d:>3} " + "".join(f"{results[name]['by_distance'][d]:>11.3f}" for name in results))
    print(f"wrote {args.out}/probe.png, probe.svg and probe.json")
    return 0

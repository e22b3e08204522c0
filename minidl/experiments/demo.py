"""``make demo`` / ``minidl demo``: the main job on the built-in corpus, in about a minute (62-77 s
measured on the course machine).

All five sentiment models × hidden sizes 4..32 × 3 seeds on the synthetic negation corpus,
run as a resumable sweep on the local cores, then plotted (accuracy, F1 and ROC-AUC against
the hidden size, mean ± std over seeds). The same commands run on IMDB: see
assignments/ex2_sentiment/README.md.
"""
from __future__ import annotations

import os
import time

from ..io import check_replaceable, check_writable
from ..models import COURSE_MODELS
from .plot import plot_sweep
from .sweep import grid, load_results, run_sweep, summarise, table_markdown

MODELS = COURSE_MODELS            # the registry's course models: rnn, gru, mlp, softmax, attention
HIDDEN = (4, 8, 16, 32)
SEEDS = (0, 1, 2)
# The built-in corpus learns fast with a larger step than IMDB's 1e-3 (see the README).
SETTINGS = dict(data="synthetic", embed_dim=32, lr=0.005, epochs=6, patience=None)


def main(args):
    check_writable(args.out, folder=True)
    start = time.perf_counter()
    results_path = os.path.join(args.out, "results.jsonl")
    check_replaceable(results_path, lambda path: load_results(path) is not None, "minidl demo", f"--out {args.out}:",
                      beside=[os.path.join(args.out, f"sweep.{ext}") for ext in ("png", "svg")])
    configs = grid(MODELS, HIDDEN, SEEDS, device=args.device, **SETTINGS)
    results = run_sweep(configs, results_path, max_workers=args.workers)
    paths = plot_sweep(results, os.path.join(args.out, "sweep"),
                       title="Built-in negation corpus: accuracy, F1, AUC against hidden size (3 seeds)")
    print()
    print(table_markdown(summarise(results)))
    print(f"\nwrote {', '.join(paths)} ({results_path}) in {time.perf_counter() - start:.0f} s")
    return 1 if any(r.get("error") for r in results) else 0

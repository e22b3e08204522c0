"""The ``minidl`` command line: ``minidl demo``, ``minidl bench mlp``."""
from __future__ import annotations

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog="minidl", description="minidl: a from-scratch deep-learning framework")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train MLPs on two spirals over a grid of hidden sizes and plot")
    demo.add_argument("--out", default="runs/demo", help="folder for results.json and spirals.png")
    demo.add_argument("--hidden", default="2,4,8,16,32,64", help="comma-separated hidden sizes")
    demo.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    demo.add_argument("--steps", type=int, default=1500, help="full-batch training steps per run")
    demo.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')

    bench = commands.add_parser("bench", help="benchmarks against PyTorch, measured in the same run")
    bench_what = bench.add_subparsers(dest="what", required=True)
    mlp = bench_what.add_parser("mlp", help="2-layer MLP training step, minidl-NumPy vs PyTorch eager (CPU)")
    mlp.add_argument("--device", default="cpu")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .experiments import spirals

        spirals.main(args)
    elif args.command == "bench" and args.what == "mlp":
        from .bench import mlp

        mlp.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

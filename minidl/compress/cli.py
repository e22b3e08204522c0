"""``minidl compress prune | qat | lowrank-sweep | seeds``: one procedure of the compression report at a time.

    minidl compress prune --teacher runs/teacher/best.npz --out runs/compress --amount 0.2 --fine-tune
    minidl compress qat --teacher runs/teacher/best.npz --out runs/compress
    minidl compress lowrank-sweep --teacher runs/teacher/best.npz --out runs/compress --ranks 2,8,32,128
    minidl compress seeds --teacher runs/teacher/best.npz --out runs/compress --seeds 0,1,2

Each writes its model file and its row(s), with the teacher's as the reference, into
``--out``/results.jsonl, the file ``minidl compress-report --out`` fills: the report then
reuses those rows instead of recomputing them. The rank sweep writes rank_sweep.jsonl and
rank_sweep.png/.svg; run again, it reuses the ranks measured with the same settings (and refuses a
sweep of others). ``seeds`` repeats the fine-tuned rows whose differences from the teacher
are under a point (``CompressionReport.seeded_rows``) under each seed, seed 0's in ``--out``
itself and seed N's in ``--out``/seedN, and writes their mean and spread to seeds.md.
"""
from __future__ import annotations

import os

from ..command import at_least, whole_numbers
from ..io import write_text
from ..train.config import ConfigError
from .prune import format_report, sparsity_report
from .rank_sweep import format_rank_sweep


def add_arguments(commands):
    compress = commands.add_parser("compress", help="one compression procedure on a trained teacher: prune, qat, "
                                                    "lowrank-sweep, seeds (rows shared with compress-report)")
    what = compress.add_subparsers(dest="what", required=True)

    prune = _command(what, "prune", main_prune,
                     "one-shot magnitude pruning, optionally fine-tuned with the mask locked")
    prune.add_argument("--amount", type=float, required=True, help="fraction of the weights to zero, in (0, 1)")
    prune.add_argument("--scope", choices=("linear", "all"), default="linear",
                       help="linear: every Linear's weight; all: the embedding tables too (their N(0, 1) entries "
                            "then dominate one global threshold: the lesson row)")
    prune.add_argument("--per-layer", action="store_true",
                       help="each weight matrix to --amount, instead of one global threshold")
    prune.add_argument("--fine-tune", action="store_true",
                       help="then fine-tune with distillation on --fine-tune-reviews reviews, the mask locked")

    _command(what, "qat", main_qat, "int8 after training (PTQ) and with quantisation-aware training (QAT)")

    sweep = _command(what, "lowrank-sweep", main_lowrank_sweep,
                     "SVD ranks from 2 to full: error, energy and accuracy, plotted")
    sweep.add_argument("--ranks", type=whole_numbers(1), default=None,
                       help="comma-separated ranks (default: powers of two from 2, the largest useful rank, full)")
    sweep.add_argument("--no-fine-tune", action="store_true", help="score each rank only before fine-tuning")
    sweep.add_argument("--min-size", type=at_least(0), default=1024,
                       help="factorise only Linears with at least this many weights")

    seeds = _command(what, "seeds", main_seeds, "the fine-tuned rows within a point of the teacher, under several "
                                                "seeds: mean and standard deviation", seed=False)
    seeds.add_argument("--student-epochs", type=at_least(1), default=2,
                       help="epochs of distillation for the student, as compress-report was given them")
    seeds.add_argument("--seeds", type=whole_numbers(0), default="0,1,2",
                       help="comma-separated seeds (seed 0's rows are --out's own, compress-report's; seed N's go "
                            "to --out/seedN)")


def _command(what, name, run, help, seed=True):
    """The subcommand ``name``, run by ``run``, with the options every command shares (``seed``: --seed too)."""
    parser = what.add_parser(name, help=help)
    parser.set_defaults(run=run)
    parser.add_argument("--teacher", required=True, help="the teacher's checkpoint (best.npz of minidl train)")
    parser.add_argument("--out", required=True, help="folder for results.jsonl and the models (shared with "
                                                     "compress-report)")
    parser.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')
    parser.add_argument("--fine-tune-reviews", type=at_least(1), default=8000,
                        help="training reviews each fine-tuning pass reads")
    parser.add_argument("--test-limit", type=at_least(1), default=None,
                        help="score a seeded subset of this many test reviews (default: all of them)")
    if seed:
        parser.add_argument("--seed", type=at_least(0), default=0,
                            help="seeds the fine-tuning reviews, their order and dropout")
    return parser


def _report(args, seed=None, out=None):
    from .report import CompressionReport

    return CompressionReport(args.teacher, out or args.out, device=args.device, fine_tune=args.fine_tune_reviews,
                             test_limit=args.test_limit, seed=args.seed if seed is None else seed,
                             student_epochs=getattr(args, "student_epochs", 2))   # seeds: its student's epochs


def _print_rows(report, names):
    """The rows ``names`` under the teacher's (scored once, into the same file, as the reference)."""
    from .report import format_table

    names = [report.teacher_row(), *names]
    print(format_table([row for row in report.rows if row["name"] in names]))
    print(f"rows in {report.results_path} (compress-report --out {report.out} reuses them and times them)")


def main_prune(args):
    if not 0.0 < args.amount < 1.0:
        raise ConfigError(f"--amount must lie in (0, 1), got {args.amount}")
    report = _report(args)
    name = report.prune_row(args.amount, scope=args.scope, tuned=args.fine_tune, per_layer=args.per_layer)
    _print_rows(report, [name])
    file = report.file_of(name)
    print(f"\nwhat each weight matrix kept, read back from {file}:")
    model = report.loaders[name](file)
    print(format_report(sparsity_report(model, names=[n for n, p in model.named_parameters() if p.data.ndim == 2])))
    return 0


def main_qat(args):
    report = _report(args)
    _print_rows(report, report.qat_rows())
    return 0


def main_lowrank_sweep(args):
    report = _report(args)
    rows = report.rank_sweep(args.ranks, fine_tune=not args.no_fine_tune, min_size=args.min_size)
    print(format_rank_sweep(rows))
    print(f"written: rank_sweep.jsonl, rank_sweep.png, rank_sweep.svg in {args.out}")
    return 0


def main_seeds(args):
    from .report import check_out, seed_table

    outs = {seed: args.out if seed == 0 else os.path.join(args.out, f"seed{seed}") for seed in args.seeds}
    for out in outs.values():   # as --out, before the data load: a user's file in seed1/models/ was overwritten
        check_out(out, teacher=args.teacher)
    first = _report(args, seed=args.seeds[0], out=outs[args.seeds[0]])   # the data and the teacher's logits, once
    reports = {seed: first.with_seed(seed, out) for seed, out in outs.items()}   # every folder checked before any row
    runs = {}
    for seed, report in reports.items():
        names = report.seeded_rows()
        runs[seed] = [row for row in report.rows if row["name"] in names]
    table = seed_table(runs)
    write_text(os.path.join(args.out, "seeds.md"), table + "\n")
    print(table)
    print(f"written: {os.path.join(args.out, 'seeds.md')}")
    return 0

"""The ``minidl`` command line.

    minidl demo                                   the main job (see the README)
    minidl spirals                                the engine demo: MLPs on two spirals
    minidl train --model gru --hidden 64 --data imdb --out runs/gru
    minidl eval --checkpoint runs/gru/best.npz
    minidl explain "Not what I expected" --checkpoint runs/mlp/best.npz
    minidl data download | info
    minidl vectors build --out vectors.txt ; minidl vectors neighbours vectors.txt good bad
    minidl sweep --models rnn,gru --hidden 16,32,64 --seeds 0,1,2 ; minidl plot --results ...
    minidl bench mlp | gru | kernels | transformer [--threads N]
    minidl compress-report --teacher runs/teacher/best.npz --out runs/compress
    minidl curves runs/teacher/results.json --out curves.png
    minidl mlm pretrain | distill | evaluate ; minidl fill-mask "happy birthday to [MASK] !" --teacher ...
    minidl assignment make ex2_sentiment --out handout ; minidl grade handout
    minidl serve --teacher runs/mlm/teacher.npz --student runs/mlm/student.npz --classifier runs/mlp/best.npz
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time

from .bench.threads import describe as describe_threads, limit_threads
from .command import ArgumentParser, _call, _converted, _once, at_least, run, whole_numbers
from .compress.quantize import quantize
from .data.batching import encode_dataset, subset
from .data.vocab import TextEncodingError
from .io import finite, write_text
from .metrics import format_report
from .models import MODELS, describe
from .train import TrainConfig, evaluate, fit, load_classifier
from .train.config import ConfigError, as_option
from .train.checkpoint import check_data
from .train.prepare import BUILT_IN, load_splits, parse_label_names, read_table, relabel


def _json_object(text):
    """--model-options: a JSON object, or argparse's one-line error."""
    return _converted(text, json.loads, lambda value: isinstance(value, dict),
                      "give a JSON object like '{{\"radius\": 5}}', got {text!r}")


def _model_names(text):
    """probe --models: comma-separated names of the model registry, at least one."""
    names = _converted(text, lambda text: [name.strip() for name in text.split(",") if name.strip()],
                       lambda names: names and set(names) <= set(MODELS),
                       f"give comma-separated models of {', '.join(MODELS)}, got {{text!r}}")
    return _once(names, text)   # probe --models mlp,mlp trained it twice and kept one


def _or_none(convert, what):
    """An argparse ``type=``: "none" -> None, else ``convert(text)`` or argparse's one-line error, "give a number or
    none, got 'abc'" (it named the function: "invalid <lambda> value"); the ranges are TrainConfig.check's."""
    return lambda text: None if text.strip().lower() == "none" else _converted(text, convert, lambda value: True,
                                                                               f"give {what} or none, got {{text!r}}")


def _parse_hidden(text):
    """"64" -> 64; "[64,32,16]" or "64,32,16" with brackets -> [64, 32, 16]; else argparse's one-line
    error (the sizes themselves are TrainConfig.check's)."""
    text = text.strip()
    try:
        return json.loads(text) if text.startswith("[") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number like 64, or for mlp and softmax a list like "
                                         f"[64,32,16], got {text!r}") from None


# the help of each TrainConfig field (minidl/train/config.py), as `minidl train` shows it
_TRAIN_HELP = {
    "model": "the model: ",  # + each model of the registry, minidl.models.MODELS, with its summary
    "hidden": "hidden size, or for mlp and softmax a list of layer sizes like [64,32,16]",
    "embed_dim": "word-embedding size; with --embeddings, the file's width instead",
    "model_options": 'more model settings as JSON, e.g. \'{"radius": 5}\' (attention) or '
                     '\'{"nonlinearity": "tanh"}\' (rnn) (default: none)',
    "dropout": "dropout probability while training; 0: none",
    "word_dropout": "while training, show each word as <unk> with this probability; 0: never",
    "embeddings": "start the embedding table from this GloVe-format file (.txt or .txt.gz, e.g. from minidl "
                  "vectors build) (default: a random table)",
    "freeze_embeddings": "keep the --embeddings table fixed while training",
    "data": '"synthetic" (the built-in corpus), "imdb", or a CSV/TSV/JSONL table of your own (its training '
            'rows; see --validation-data, --test-data)',
    "data_path": "where the IMDB data is: archive, aclImdb/ folder or CSV (default: $MINIDL_DATA, then "
                 "~/.cache/minidl)",
    "validation_data": "your own validation file (CSV/TSV/JSONL, same labels as --data) to choose the best "
                       "checkpoint and stop early (default: --validation of the training rows)",
    "test_data": "your own test file (default: a seeded 20 %% of --data, which leaks when --data holds near-copies "
                 "of one text, such as phrases of one sentence)",
    "text_column": "the text column of your files; \"sentence,content\": each file uses the first it has",
    "label_column": "the label column of your files; several names, comma-separated, as for --text-column",
    "label_names": '"neg,pos": the labels of --data in class order; "0=neg,1=pos": and the names shown '
                   "(default: the file's labels, sorted)",
    "max_length": "keep the first N words of each review",
    "train_windows": "train on every window of --max-length words of each training review (words 1-N, N+1-2N, "
                     "...; a last window shorter than N/2 is left out), not only the first; validation and test "
                     "still read the first N words",
    "min_word_length": "drop words shorter than this; 1 keeps \"a\" and \"I\" (the course's cleaning drops them)",
    "keep_digits": "keep numbers (\"10/10\" -> 10 10, \"90s\"); the course's cleaning keeps letters only",
    "contractions": "\"split\": didn't -> did n't; \"not\": didn't -> did not (can't, won't: can, will) "
                    "(default: the course's cleaning, didn't -> didn)",
    "max_vocab": "vocabulary size, <pad> and <unk> included: the most frequent training words",
    "min_freq": "leave out of the vocabulary words seen fewer times than this in training",
    "validation": "fraction of the training reviews held out to choose the best checkpoint and stop early, "
                  "when there is no --validation-data; 0: none, the test split takes their place",
    "train_limit": "train on the first N training reviews only, for quick runs (default: all)",
    "teacher": "learn from a teacher too: a trained classifier (best.npz of minidl train) or a linear baseline "
               "trained here on the training reviews (tfidf, nbsvm); \"nbsvm,a.npz\": their mean logits. The loss "
               "mixes the labels with its soft targets (knowledge distillation) (default: none)",
    "unlabelled": "with --data imdb and --teacher: add this many of IMDB's 50,000 unlabelled reviews to training, "
                  "with the teacher's soft targets and its choice as their label; 0: none",
    "distill_alpha": "with --teacher: the share of the label term in the loss; the rest is the teacher's soft "
                     "targets (1: labels only)",
    "temperature": "with --teacher: divide both models' logits by this in the soft term (higher: softer targets)",
    "batch_size": "reviews per training batch",
    "epochs": "passes over the training reviews, fewer if training stops early",
    "optimizer": '"adam" (weight decay as an L2 penalty) or "adamw" (decoupled weight decay)',
    "lr": "learning rate; with --warmup-steps, the peak one",
    "embedding_lr": "the embedding table's own learning rate, e.g. to fine-tune --embeddings slowly; \"none\": "
                    "--lr (default: none)",
    "embedding_freeze_steps": "fine-tuning after a frozen warm-up: the embedding table stays frozen for the first "
                              "N steps, then learns (at --embedding-lr if given); 0: off",
    "weight_decay": "weight decay, as --optimizer applies it; 0: none",
    "weight_average": "keep an exponential moving average of the weights with this decay (e.g. 0.999: about the "
                      "last 1,000 steps) and evaluate, keep and test it instead of the latest weights; 0: off",
    "clip_norm": 'clip the gradients\' global norm to this; "none": no clipping',
    "warmup_steps": "raise the learning rate linearly over this many steps, then lower it linearly to 0 by the "
                    "end; 0: a constant learning rate",
    "eval_every": "training steps between evaluations on the validation reviews (default: once per epoch)",
    "patience": 'evaluations without a better --metric before training stops early; "none": never',
    "metric": 'what "best" means, for best.npz and stopping early: accuracy, f1 or auc (higher is better), '
              'or loss',
    "test_curve": "also score the test split at every evaluation, for minidl curves (never to choose the "
                  "best checkpoint)",
    "seed": "random seed: the weights, dropout, the validation split and the batch order",
    "device": '"cpu" (NumPy), "torch" or "cuda"',
    "bucket": "batch reviews of similar length together (less padding); --no-bucket: any reviews together",
}


def add_train_config_arguments(parser):
    """One --option per TrainConfig field, typed from its default."""
    types = {"hidden": _parse_hidden, **dict.fromkeys(("embedding_lr", "clip_norm"), _or_none(float, "a number")),
             **dict.fromkeys(("patience", "eval_every", "train_limit"), _or_none(int, "a whole number"))}
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = as_option(f.name)
        text = _TRAIN_HELP.get(f.name, "") + (describe() if f.name == "model" else "")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        kind = types.get(f.name) or (_json_object if isinstance(default, dict)
                                     else type(default) if isinstance(default, (int, float)) else None)
        parser.add_argument(flag, type=kind, default=default, help=text)


def build_parser():
    parser = ArgumentParser(prog="minidl", description="minidl: a from-scratch deep-learning framework")
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the main job: all five models x hidden sizes x 3 seeds on the "
                                            "built-in corpus, plotted (about a minute on two cores)")
    demo.set_defaults(run=_call("minidl.experiments.demo", "main"))
    demo.add_argument("--out", default="runs/demo", help="folder for results.jsonl and sweep.png/.svg")
    demo.add_argument("--workers", type=at_least(1), default=None, help="worker processes (default: one per core)")
    demo.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')

    spirals = commands.add_parser("spirals", help="the engine demo: MLPs on two spirals over hidden sizes, plotted")
    spirals.set_defaults(run=_call("minidl.experiments.spirals", "main"))
    spirals.add_argument("--out", default="runs/spirals", help="folder for results.json and spirals.png")
    spirals.add_argument("--hidden", type=whole_numbers(1), default="2,4,8,16,32,64",
                         help="comma-separated hidden sizes")
    spirals.add_argument("--seeds", type=whole_numbers(0), default="0,1,2", help="comma-separated seeds")
    spirals.add_argument("--steps", type=at_least(1), default=1500, help="full-batch training steps per run")
    spirals.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')

    train = commands.add_parser("train", help="train one sentiment model; checkpoints and results in --out")
    train.set_defaults(run=_train)
    add_train_config_arguments(train)
    train.add_argument("--out", default=None, help="folder for best.npz, last.npz and results.json "
                                                   "(default: none, nothing is saved)")
    train.add_argument("--resume", action="store_true", help="continue from --out/last.npz")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the checkpoints of another run in --out (without it, such a folder is refused)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--json", action="store_true", help="print the test metrics as JSON instead of a table")

    evaluate = commands.add_parser("eval", help="evaluate a checkpoint on the test split of its data")
    evaluate.set_defaults(run=_eval)
    evaluate.add_argument("--checkpoint", required=True, help="a checkpoint of minidl train (best.npz or last.npz)")
    evaluate.add_argument("--data", default=None,
                          help='"synthetic" or "imdb" (their test split), or a CSV/TSV/JSONL file of yours: every '
                               "row is scored, its labels matched by name to the checkpoint's (default: the test "
                               "split of the data it was trained on)")
    evaluate.add_argument("--text-column", default=None,
                          help="the text column of --data FILE; several names, comma-separated: the first the "
                               "file has (default: the checkpoint's)")
    evaluate.add_argument("--label-column", default=None,
                          help="the label column of --data FILE, as --text-column (default: the checkpoint's)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    evaluate.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')
    evaluate.add_argument("--int8", action="store_true",
                          help="also quantise the checkpoint to int8 (Linears and the embedding table) and report "
                               "both models' metrics and reviews/s, timed in the same run")
    evaluate.add_argument("--limit", type=at_least(1), default=None,
                          help="score a seeded subset of this many test reviews (default: all of them)")

    explain = commands.add_parser("explain", help="print each word's contribution to a checkpoint's prediction")
    explain.set_defaults(run=_explain)
    explain.add_argument("texts", nargs="+", help="one or more reviews, each in quotes")
    explain.add_argument("--checkpoint", required=True, help="a checkpoint of minidl train (best.npz)")
    explain.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')

    probe = commands.add_parser("probe", help="train on the built-in corpus, then accuracy against negation distance")
    probe.set_defaults(run=_call("minidl.experiments.probe", "main"))
    probe.add_argument("--models", type=_model_names, default="attention,gru",
                       help="comma-separated models to train and probe (names as for minidl train --model)")
    probe.add_argument("--radius", type=at_least(1), default=5, help="the attention window's radius")
    probe.add_argument("--seed", type=at_least(0), default=0, help="random seed of the training runs")
    probe.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')
    probe.add_argument("--out", default="runs/probe", help="folder for probe.json, probe.png and probe.svg")

    bench = commands.add_parser("bench", help="benchmarks against PyTorch, measured in the same run")
    bench_what = bench.add_subparsers(dest="what", required=True)
    mlp = bench_what.add_parser("mlp", help="2-layer MLP training step, minidl-NumPy vs PyTorch eager (CPU)")
    mlp.add_argument("--device", default="cpu", help='minidl\'s side: "cpu" (NumPy), "torch" or "cuda"; '
                                                      'PyTorch\'s runs on the CPU')
    gru = bench_what.add_parser("gru", help="GRU classifier training step, minidl-NumPy vs torch.nn.GRU (CPU)")
    gru.add_argument("--imdb-epoch", action="store_true", help="also time one IMDB training epoch of each")
    gru.add_argument("--data", default=None, help="IMDB location (default: $MINIDL_DATA, ~/.cache/minidl)")
    kernels = bench_what.add_parser("kernels", help="the Triton kernels vs cuDNN, dense attention and PyTorch's "
                                                    "losses (forward + backward, on a GPU)")
    kernels.add_argument("--only", type=lambda text: text.split(","), default=None,
                         help="comma-separated subset of gru,rnn,attention,mha,losses (default: all)")
    kernels.add_argument("--precision", choices=["high", "highest"], default="high",
                         help="torch.set_float32_matmul_precision for the run: high = TF32 products (as "
                              "cuDNN), highest = full float32")
    transformer = bench_what.add_parser("transformer", help="transformer encoder (classifier and masked-LM) "
                                                            "training step and inference, minidl vs PyTorch eager "
                                                            "with the same weights")
    for option, kind, default, text in (   # --vocab >= 3: ids 0 and 1 are padding and [MASK]
            ("--models", None, "classifier,mlm", "comma-separated subset of classifier,mlm"),
            ("--lengths", None, None, "comma-separated sequence lengths T (default: 128,256,512; --quick: 32,64)"),
            ("--batch", at_least(1), None, "reviews per batch (default: 32; --quick: 8)"),
            ("--vocab", at_least(3), None, "vocabulary size V (default: 20000; --quick: 2000)"),
            ("--dropout", float, 0.1, "dropout on both sides while training"),
            ("--rounds", at_least(1), None, "interleaved rounds, the median is reported (default: 3; --quick: 2)"),
            ("--steps", at_least(1), None, "calls timed per side, measure and round (default: 1; --quick: 2)")):
        transformer.add_argument(option, type=kind, default=default, help=text)
    # its own dest: the check of every command's args.device would advise "torch", which this bench refuses
    transformer.add_argument("--device", default="cpu", dest="sides_device", metavar="DEVICE",
                             help='"cpu": minidl on NumPy and on torch-CPU vs PyTorch on the CPU; "cuda": minidl '
                                  'on CUDA vs PyTorch on CUDA')
    transformer.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                             help="also measure each side's peak memory, in a fresh process per side")
    transformer.add_argument("--quick", action="store_true",
                             help="small sizes for a first look")
    transformer.add_argument("--seed", type=at_least(0), default=0, help="random seed of the weights and the batch")
    transformer.add_argument("--shape", default=None,
                             help='the model\'s size as JSON, any of d_model, num_heads, num_layers, d_ff, e.g. '
                                  '\'{"d_model": 256, "num_layers": 4, "d_ff": 1024}\' (default: the compression '
                                  'teacher, {"d_model": 128, "num_heads": 4, "num_layers": 2, "d_ff": 256})')
    transformer.add_argument("--json", action="store_true",
                             help="print the results as JSON instead of the table")
    for each in (mlp, gru, kernels, transformer):
        each.set_defaults(run=_bench)
        each.add_argument("--threads", type=at_least(1), default=None, metavar="N",
                          help="threads for torch and for NumPy's BLAS alike, 1 to the usable CPUs (default: leave the "
                               "libraries' own choice; the one in force is printed)")

    # `minidl bench serve` (serve under load), `minidl compress prune|qat|lowrank-sweep|seeds`: each sets args.run
    importlib.import_module("minidl.bench.serve").add_arguments(bench_what)
    importlib.import_module("minidl.compress.cli").add_arguments(commands)

    report = commands.add_parser("compress-report", help="distil, prune, factorise and quantise a trained teacher; "
                                                         "one table of size, accuracy and speed, plotted")
    report.set_defaults(run=_call("minidl.compress.report", "main"))
    report.add_argument("--teacher", required=True, help="the teacher's checkpoint (best.npz of minidl train)")
    report.add_argument("--decoder", default=None, help="a causal decoder's checkpoint, for a "
                                                                "comparison row (default: no such row)")
    report.add_argument("--out", required=True, help="folder for results.jsonl/.md, the plots and the models")
    report.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')
    report.add_argument("--fine-tune", type=at_least(1), default=8000, help="training reviews for each fine-tuning run")
    report.add_argument("--student-epochs", type=at_least(1), default=2, help="epochs of distillation for each student")
    report.add_argument("--gradual-epochs", type=at_least(1), default=2, help="passes over the gradual-pruning reviews")
    report.add_argument("--gradual-tune", type=at_least(1), default=None,
                        help="training reviews for gradual pruning (default: the --fine-tune ones; a number "
                             "at or above the training split's size means all of it)")
    report.add_argument("--test-limit", type=at_least(1), default=None, help="score a seeded subset of this many "
                                                                          "test reviews (default: all of them)")
    report.add_argument("--seed", type=at_least(0), default=0,
                        help="seeds the fine-tuning reviews, their order, dropout and the students' initialisation")
    baseline = commands.add_parser("baseline", help="linear baselines on the models' own inputs: TF-IDF or NB-weighted "
                                                    "word n-grams + logistic regression, scored on the test split")
    baseline.set_defaults(run=_call("minidl.baseline", "main"))
    baseline.add_argument("--kind", default=None,
                          help='comma-separated baselines: "tfidf" (sublinear TF-IDF, rows at unit length) and '
                               "\"nbsvm\" (Wang & Manning's naive-Bayes log-count ratios, two classes), each + "
                               "logistic regression (default: tfidf,nbsvm; tfidf alone on more classes)")
    baseline.add_argument("--max-length", default="100",
                          help="keep the first N words of each review after the course's cleaning, as the models "
                               "do; comma-separated for several runs, e.g. 100,400")
    baseline.add_argument("--data", default="imdb",
                          help='"imdb" (the official split), "synthetic", or a CSV/TSV/JSONL table of yours, as '
                               "for minidl train --data")
    for name, default in (("text_column", "text"), ("label_column", "label"), ("data_path", None),   # as train's
                          ("test_data", None)):   # (without it, own data were scored on the leaky 20 % only)
        baseline.add_argument(as_option(name), default=default, help=_TRAIN_HELP[name])
    for option, kind, default, text in (
            ("--ngrams", None, "1,2", "the n-gram sizes low,high (at most 3): 1,2 counts words and pairs of words"),
            ("--min-df", int, 2, "keep the n-grams found in at least this many training reviews"),
            ("--epochs", int, 5, "passes of Adam over the training reviews"),
            ("--batch-size", int, 256, "training reviews per Adam step"),
            ("--lr", float, None, "Adam's learning rate (default: 0.01 for tfidf, 0.002 for nbsvm)"),
            ("--weight-decay", float, None, "the L2 penalty on the weights, as Adam's weight decay (default: 3e-6 "
                                            "for tfidf, 1e-5 for nbsvm)"),
            ("--alpha", float, 1.0, "nbsvm: the count added to every n-gram of each class (Laplace smoothing)")):
        baseline.add_argument(option, type=kind, default=default, help=text)
    baseline.add_argument("--seed", type=at_least(0), default=0, help="random seed of the mini-batch order")
    baseline.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")

    curves = commands.add_parser("curves", help="plot train/validation/test loss and accuracy per epoch")
    curves.set_defaults(run=_call("minidl.experiments.curves", "main"))
    curves.add_argument("results", nargs="+", help="results.json files of minidl train --test-curve, or the --out "
                                                   "folders that hold them")
    curves.add_argument("--out", default="curves.png", help="the image to write; its extension (.png, .svg, "
                                                            ".pdf) sets the format")

    for module in ("data.cli",             # `minidl data ...` and `minidl vectors ...`
                   "experiments.sweep",    # `minidl sweep` and `minidl plot`
                   "mlm.cli",              # `minidl mlm ...` and `minidl fill-mask`
                   "web.server",           # `minidl serve`: the local web page
                   "assignment.commands"):  # `minidl assignment make|list|expected` and `minidl grade`
        importlib.import_module(f"minidl.{module}").add_arguments(commands)  # each command sets args.run
    return parser


def _train(args):
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}).check()
    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    result = fit(config, out=args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet, log=log)
    summary = finite({k: result.test[k] for k in ("accuracy", "precision", "recall", "f1", "auc", "loss")})
    if args.json:
        print(json.dumps({"test": summary, "steps": result.steps, "seconds": round(result.seconds, 1),
                          "stopped_early": result.stopped_early}, indent=2))
    else:
        stop = ", stopped early" if result.stopped_early else ""
        print(format_report(result.test, result.label_names, f"test: {result.test['n']} reviews, scored by the "
                                                             f"best checkpoint ({result.steps} steps, "
                                                             f"{result.seconds:.0f} s{stop})"))
    if args.out:
        write_text(os.path.join(args.out, "results.json"),
                   json.dumps(finite(dataclasses.asdict(result)), indent=1, allow_nan=False))
    return 0


def _eval(args):
    model, vocab, tokenizer, labels, config = load_classifier(args.checkpoint, device=args.device)
    scored = _evaluation_data(args, config, labels)
    test = encode_dataset(scored, tokenizer, vocab, config.max_length)     # the checkpoint's own vocabulary
    if args.limit is not None:
        test = subset(test, args.limit, 0)
    if not args.int8:
        metrics = evaluate(model, test, device=args.device, progress="scoring")
        print(json.dumps(finite(metrics), indent=2) if args.json
              else format_report(metrics, labels, f"{scored.name}: {len(test)} reviews"))
        return 0
    results = {"float32": _timed_evaluation(model, test, args.device, "float32")}
    quantize(model, embeddings=True)
    results["int8"] = _timed_evaluation(model, test, args.device, "int8")
    results["int8_speedup"] = round(results["int8"]["reviews_per_s"] / results["float32"]["reviews_per_s"], 3)
    results["accuracy_change_points"] = round(100 * (results["int8"]["accuracy"] - results["float32"]["accuracy"]), 2)
    if args.json:
        print(json.dumps(finite(results), indent=2))
        return 0
    print(f"{scored.name}: {len(test)} reviews, float32 and int8 timed in the same run")
    print(f"  {'model':<8}{'accuracy':>10}{'f1':>10}{'loss':>10}{'reviews/s':>11}")
    for name in ("float32", "int8"):
        r = results[name]
        print(f"  {name:<8}{r['accuracy']:>10.4f}{r['f1']:>10.4f}{r['loss']:>10.4f}{r['reviews_per_s']:>11.1f}")
    print(f"int8: {results['int8_speedup']:.2f}x the float32 speed, accuracy {results['accuracy_change_points']:+.2f} "
          f"points")
    return 0


def _evaluation_data(args, config, labels):
    """The TextDataset ``eval`` scores: its --data file whole (labels matched by name to the
    checkpoint's ``labels``), or the test split of a built-in source or of the training data."""
    changes = {k: getattr(args, k) for k in ("text_column", "label_column") if getattr(args, k)}
    if changes and (args.data or config.data) in BUILT_IN:   # they changed nothing, silently
        raise ConfigError(f"{as_option(next(iter(changes)))} names a column of a table (--data FILE); the "
                          f"{args.data or config.data} data has none")
    config = dataclasses.replace(config, **changes)
    if not args.data:   # the checkpoint's own data: the files it was trained on, unchanged
        config = dataclasses.replace(config, **check_data(args.checkpoint, advice="restore the file, or score a file "
                                                                                  "whole with --data FILE"))
    # its --test-data file is its test split, read alone (a column missing there was said of the training file)
    path = args.data or config.test_data
    if path is None or path in BUILT_IN:
        # (a built-in source brings its own splits: the checkpoint's files were refused, "go with --data FILE")
        config = dataclasses.replace(config, data=path or config.data, validation_data=None, test_data=None)
        print(f"reading the test split of {config.data} ...", file=sys.stderr, flush=True)   # IMDB: seconds
        return load_splits(config)["test"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--data {path}: " + ("a folder, not a file" if os.path.isdir(path)
                                                      else "no such file"))
    values, _ = parse_label_names(config.label_names)
    return relabel(read_table(path, config), values or labels, labels, "checkpoint's")


def _timed_evaluation(model, test, device, name):
    """The metrics of ``evaluate`` plus reviews/s, after one warm-up batch (int8 packs its weights there) that
    shows the bar too: the first bar's set-up (importing tqdm) made float32 look up to 5x slower than int8."""
    evaluate(model, subset(test, min(len(test), 128), 1), device=device, progress=f"scoring ({name})")
    start = time.perf_counter()
    metrics = evaluate(model, test, device=device, progress=f"scoring ({name})")
    return {**metrics, "reviews_per_s": round(len(test) / (time.perf_counter() - start), 1)}


def _explain(args):
    from .train.explain import explain, format_explanation

    model, vocab, tokenizer, labels, _ = load_classifier(args.checkpoint, device=args.device)
    for i, text in enumerate(args.texts, 1):   # each one readable (not empty, a known word) before the first is explained
        try:
            vocab.encode_text(text, tokenizer)
        except TextEncodingError as error:
            if len(args.texts) == 1:
                raise
            raise TextEncodingError(f"text {i} of {len(args.texts)}, {text[:40]!r}: {error}") from None   # which?
    for text in args.texts:
        print(format_explanation(explain(text, model, vocab, tokenizer, labels, device=args.device)))
        print()
    return 0


def main(argv=None):
    """Parse the command line and run the command; its exit code (0 on success). Errors from
    the user's input or the machine (a bad setting, a missing file, a full disk) print one line,
    ``minidl <command>: <what is wrong and what to do>``, and exit 1; ``--debug`` shows the traceback."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:   # Ctrl-C while the commands' modules load (half a second) was a traceback
        print("minidl: interrupted", file=sys.stderr)
        return 130
    return run(args)


def _bench(args):
    with limit_threads(args.threads):  # checks 1 <= N <= the usable CPUs before any work
        importlib.import_module(f"minidl.bench.{args.what}").main(args)
        # afterwards, so that a bench refusing its input answers in one line
        print(f"minidl bench {args.what} ran with threads: {describe_threads()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

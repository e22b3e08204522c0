"""``minidl mlm pretrain | distill | evaluate | finetune`` and ``minidl fill-mask``.

    minidl mlm pretrain --out runs/mlm/teacher.npz --d-model 128 --layers 4 --heads 4 --d-ff 512
    minidl mlm distill --teacher runs/mlm/teacher.npz --out runs/mlm/student.npz --d-model 32 --layers 4
    minidl mlm evaluate --teacher runs/mlm/teacher.npz --student runs/mlm/student.npz --out results.json
    minidl mlm finetune --student runs/mlm/student.npz --out runs/mlm/finetune.json
    minidl fill-mask "happy birthday to [MASK] !" --teacher runs/mlm/teacher.npz --student runs/mlm/student.npz
"""
from __future__ import annotations

import json
import os
import sys
import time
import zipfile

from ..command import at_least, positive
from ..compress.quantize import quantize
from ..data.imdb import load_imdb
from ..data.vocab import TextEncodingError
from ..io import (CUT_SHORT, WriteError, check_replaceable, check_writable, cut_short, file_sha256, json_keys,
                  npz_meta, write_text)
from ..train.checkpoint import as_option, differences
from .checkpoint import build_mlm, is_mlm_checkpoint, load_mlm, save_mlm
from .corpus import cooccurrence_embeddings, held_out_cases, load_corpus
from .evaluate import compare, top_k
from .pretrain import state_path, train_mlm
from .projection import start_from_teacher
from .tokenizer import MASK


PRETRAIN_SHAPE = {"d_model": 128, "num_layers": 4, "num_heads": 4, "d_ff": 512}   # pretrain's defaults
PRETRAIN_LENGTH, PRETRAIN_VOCAB, DROPOUT = 128, 8000, 0.1
_WRITERS = {"teacher": "pretrain", "student": "distill"}   # the command that trains a checkpoint of each role


def _model_arguments(parser, d_model, layers, heads, d_ff):
    parser.add_argument("--d-model", type=at_least(1), default=d_model,
                        help="the model's width: embedding and hidden size")
    parser.add_argument("--layers", type=at_least(1), default=layers, help="encoder layers")
    parser.add_argument("--heads", type=at_least(1), default=heads,
                        help="attention heads per layer; must divide --d-model")
    parser.add_argument("--d-ff", type=at_least(1), default=d_ff, help="hidden size of each layer's feed-forward block")
    parser.add_argument("--dropout", type=float, default=DROPOUT, help="dropout probability while training")


def _training_arguments(parser, steps, lr):
    parser.add_argument("--out", required=True, help="the checkpoint to write (.npz), rewritten at every evaluation")
    parser.add_argument("--data", default=None, help="IMDB location (default: $MINIDL_DATA, ~/.cache/minidl)")
    parser.add_argument("--steps", type=at_least(1), default=steps,
                        help="training steps; the learning rate warms up over the first tenth (at most 1000 steps), "
                             "then decays linearly to 0 at the last")
    parser.add_argument("--time-limit", type=positive, default=None, help="stop (evaluated and saved) after this "
                                                                      "many seconds (default: no limit)")
    parser.add_argument("--batch-size", type=at_least(1), default=64, help="segments per training batch")
    parser.add_argument("--lr", type=positive, default=lr, help="AdamW's peak learning rate")
    parser.add_argument("--eval-every", type=at_least(1), default=200,
                        help="steps between evaluations on the held-out fill-mask sentences, each one saving --out")
    parser.add_argument("--max-reviews", type=at_least(1), default=None,
                        help="the first N reviews of each part, for quick runs (default: all)")
    parser.add_argument("--device", default="torch", help='"cpu" (NumPy), "torch" or "cuda"')
    parser.add_argument("--seed", type=at_least(0), default=0,
                        help="random seed: the weights, the batch order, the masking and the held-out sentences")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run that writes --out exactly where it stopped, from the training state "
                             "saved beside it (OUT.state.npz); give the same options as the first time")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the checkpoint of an earlier run at --out (without it, such an --out is "
                             "refused)")


def _refused(args):
    """None if pretraining or distillation can start, else the one-line reason it cannot, found
    before the reviews are read: a setting out of range, an --out no file can be written to, or
    a --resume with no training state to resume."""
    if args.d_model % args.heads:
        return f"--heads {args.heads} must divide --d-model {args.d_model} (each head takes d_model / heads)"
    if not 0 <= args.dropout < 1:
        return f"--dropout must lie in [0, 1), got {args.dropout}"
    if hasattr(args, "teacher"):   # distill's own settings
        if not 0 <= args.alpha <= 1:
            return f"--alpha is the weight of the hard-label term and must lie in [0, 1], got {args.alpha}"
        for name in ("hidden_weight", "attention_weight", "head_weight"):
            if not 0 <= getattr(args, name) < float("inf"):   # inf: a loss of inf at step 1, "lower the lr"
                return f"{as_option(name)} must be a finite number >= 0, got {getattr(args, name)}"
    if problem := _out_refused(args, is_mlm_checkpoint, "minidl mlm", "teacher", "resume_from", suffix=".npz"):
        return problem
    if args.resume and args.overwrite:   # the overwrite was ignored, without a word
        return "--resume goes on from --out's run and --overwrite replaces it: give one of them"
    if os.path.exists(args.out) and not (args.resume or args.overwrite):
        return (f"--out {args.out} holds an earlier run; pass --resume to continue it, --overwrite to replace it, "
                f"or another --out")
    if args.resume:
        return _resume_refused(args)
    try:
        check_replaceable(state_path(args.out), lambda path: npz_meta(path).get("kind") == "mlm", "minidl mlm",
                          "--out's training state")
    except WriteError as error:
        return str(error)
    return None


def _resume_refused(args):
    """Why --resume cannot go on from the run at --out (None: it can): no training state beside it, a file
    there that is not one, a checkpoint of the other command, or other options than the first time."""
    if not os.path.exists(state_path(args.out)):
        return (f"--resume: there is no training state at {state_path(args.out)} (written beside --out at every "
                f"evaluation); run without --resume first")
    try:
        wrote, changed = _WRITERS.get(npz_meta(args.out).get("role")), _changed_run(args)
    except (zipfile.BadZipFile, KeyError):
        if cut := next((path for path in (args.out, state_path(args.out)) if cut_short(path)), None):
            return f"--resume: {cut} {CUT_SHORT}; move it away, or give another --out, to start again"
        return f"--resume: {state_path(args.out)} is not a minidl training state; run without --resume to start again"
    if wrote and wrote != ("distill" if hasattr(args, "teacher") else "pretrain"):   # its options cannot be given
        return f"--resume: {args.out} is a `minidl mlm {wrote}` checkpoint: resume it with that command"
    if changed:
        return (f"--resume: {args.out} was trained with other options ({changed}); give the same options as the "
                f"first time")
    return None


def _changed_run(args):
    """The options of a --resume that differ from its first run's, before the reviews are read:
    the model settings saved in --out, and the run recorded in its training state (``train_mlm``
    checks the whole run again when it resumes)."""
    saved = npz_meta(state_path(args.out)).get("run", {})
    now = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "eval_every": args.eval_every,
           "seed": args.seed, **_source(args)}
    settings = npz_meta(args.out)["settings"]
    if hasattr(args, "teacher"):   # distillation: the student's length is the teacher's
        now.update({name: getattr(args, name) for name in ("alpha", "temperature", "hidden_weight", "attention_weight",
                                                            "head_weight")})
    changed = [differences(settings, _settings(args, getattr(args, "length", settings["max_len"])), _option),
               differences(saved, {key: value for key, value in now.items() if key in saved}, _option)]
    return ", ".join(filter(None, changed))


def _option(key):
    """The option that sets the recorded setting ``key`` (num_heads: --heads, train_limit: --train-limit)."""
    return {"num_heads": "--heads", "num_layers": "--layers", "max_len": "--length",
            "teacher": "--teacher (its SHA-256)", "student": "--student (its SHA-256)"}.get(key) or as_option(key)


def _refuse(command, problem):
    """``minidl mlm <command>`` cannot run: say why on stderr, in one line; the exit code 2."""
    print(f"minidl mlm {command}: {problem}", file=sys.stderr)
    return 2


def _out_refused(args, is_own, writer, *inputs, suffix=None):
    """Why --out cannot be written, as one line, before any work (None: it can): it is one of the input
    files ``inputs`` (options of ``args``), no file can be made there, a file is there that ``writer`` did
    not write (``is_own`` False: see ``io.check_replaceable``), or it does not end in ``suffix``."""
    for name in inputs:
        path = getattr(args, name, None)
        if path and os.path.exists(args.out) and os.path.exists(path) and os.path.samefile(args.out, path):
            return f"--out is {as_option(name)} ({path}); name another file, so {path} stays"
    try:
        check_writable(args.out)
        check_replaceable(args.out, is_own, writer)
    except WriteError as error:
        return str(error)
    if suffix and not args.out.endswith(suffix):   # x.txt held a NumPy archive
        return f"--out {args.out}: the checkpoint is a NumPy archive; name it {os.path.splitext(args.out)[0]}{suffix}"
    return None


def _init_argument(parser, teacher=False):
    choices = ("teacher", "cooccurrence", "random") if teacher else ("cooccurrence", "random")
    parser.add_argument("--init", choices=choices, default=choices[0],
                        help="the starting embedding table: "
                             + ("the teacher's, projected to the student's width by SVD (with its positions and "
                                "output bias), " if teacher else "")
                             + "PPMI-SVD vectors of the corpus, or N(0, 0.02²)")


def add_arguments(commands):
    mlm = commands.add_parser("mlm", help="masked-LM pretraining, distillation and evaluation")
    what = mlm.add_subparsers(dest="what", required=True)
    pretrain = what.add_parser("pretrain", help="pretrain a masked-LM teacher on IMDB (train + unlabelled)")
    _model_arguments(pretrain, *PRETRAIN_SHAPE.values())
    _training_arguments(pretrain, 3000, 1e-3)
    pretrain.add_argument("--max-vocab", type=at_least(1), default=PRETRAIN_VOCAB,
                          help="vocabulary size, specials included: the most frequent tokens")
    pretrain.add_argument("--length", type=at_least(2), default=PRETRAIN_LENGTH,
                          help="tokens per segment, [CLS] included")
    _init_argument(pretrain)
    pretrain.add_argument("--resume-from", default=None,
                          help="continue pretraining this checkpoint (its weights, vocabulary and settings; a fresh "
                               "optimizer and schedule)")
    pretrain.set_defaults(run=main_pretrain)

    distill = what.add_parser("distill", help="distil a smaller masked-LM student from a teacher")
    distill.add_argument("--teacher", required=True, help="the teacher's checkpoint (minidl mlm pretrain)")
    _model_arguments(distill, 32, 4, 2, 128)
    _training_arguments(distill, 3000, 2e-3)
    distill.add_argument("--alpha", type=float, default=0.0, help="weight of the hard-label term (0: teacher only)")
    distill.add_argument("--temperature", type=positive, default=2.0,
                         help="softmax temperature T of the teacher's and the student's distributions in the "
                              "distillation term")
    distill.add_argument("--hidden-weight", type=float, default=0.0, help="TinyBERT hidden-state matching")
    distill.add_argument("--attention-weight", type=float, default=0.0, help="TinyBERT attention matching")
    distill.add_argument("--head-weight", type=float, default=0.0,
                         help="match the teacher's MLM-head features in the SVD basis of its embedding table "
                              "(see minidl.mlm.projection; meant with --init teacher)")
    _init_argument(distill, teacher=True)
    distill.set_defaults(run=main_distill)

    evaluate = what.add_parser("evaluate", help="teacher vs student on held-out fill-mask sentences")
    evaluate.add_argument("--teacher", required=True, help="the teacher's checkpoint (minidl mlm pretrain)")
    evaluate.add_argument("--student", required=True, help="a student distilled from it (minidl mlm distill)")
    evaluate.add_argument("--cases", type=at_least(1), default=1000,
                          help="fill-mask sentences from the IMDB test reviews")
    evaluate.add_argument("--data", default=None, help="IMDB location (default: $MINIDL_DATA, ~/.cache/minidl)")
    evaluate.add_argument("--device", default="torch", help='"cpu" (NumPy), "torch" or "cuda"')
    evaluate.add_argument("--out", default=None, help="also write the results as JSON here")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    evaluate.set_defaults(run=main_evaluate)

    quantize = what.add_parser("quantize", help="an int8 copy of a masked-LM checkpoint for evaluate and fill-mask: "
                                                "each Linear per output channel, the embedding table (also the "
                                                "output layer) per row")
    quantize.add_argument("--model", required=True, help="the float checkpoint (minidl mlm pretrain or distill)")
    quantize.add_argument("--out", required=True, help="where the int8 copy goes (not --model itself)")
    quantize.set_defaults(run=main_quantize)

    finetune = what.add_parser("finetune", help="fine-tune the distilled student on IMDB sentiment, and the same "
                                                "architecture from scratch, side by side")
    finetune.add_argument("--student", required=True, help="the distilled student's checkpoint (minidl mlm distill)")
    finetune.add_argument("--teacher", default=None, help='the teacher, for the start "teacher embeddings only" '
                                                          '(default: none, that start is left out)')
    finetune.add_argument("--out", required=True, help="results (JSON)")
    finetune.add_argument("--data", default=None, help="IMDB location (default: $MINIDL_DATA, ~/.cache/minidl)")
    finetune.add_argument("--length", type=at_least(2), default=128, help="tokens per review, [CLS] included")
    finetune.add_argument("--epochs", type=at_least(1), default=3,
                          help="passes over the training reviews, for each start")
    finetune.add_argument("--batch-size", type=at_least(1), default=32, help="reviews per training batch")
    finetune.add_argument("--lr", type=positive, default=5e-4,
                          help="AdamW's peak learning rate (warm-up over the first tenth of the steps, then down to 0)")
    finetune.add_argument("--train-limit", type=at_least(1), default=None,
                          help="a seeded subset of this many training reviews (default: all)")
    finetune.add_argument("--test-limit", type=at_least(1), default=None,
                          help="a seeded subset of this many test reviews (default: all)")
    finetune.add_argument("--device", default="torch", help='"cpu" (NumPy), "torch" or "cuda"')
    finetune.add_argument("--seed", type=at_least(0), default=0,
                          help="random seed: the subsets, the new weights and the batch order")
    finetune.add_argument("--starts", type=lambda text: text.split(","), default=None,
                          help="comma-separated subset of: pretrained, teacher embeddings only, cooccurrence only, "
                               "scratch (default: all; the second only with --teacher); results already in --out "
                               "for other starts are kept")
    finetune.set_defaults(run=main_finetune)

    fill = commands.add_parser("fill-mask", help="the top-k tokens for each [MASK], teacher and student side by side")
    fill.add_argument("text", help='a sentence with one or more [MASK], e.g. "happy birthday to [MASK] !"')
    fill.add_argument("--teacher", required=True, help="a masked-LM checkpoint (minidl mlm pretrain)")
    fill.add_argument("--student", default=None, help="a second one shown beside it, e.g. its student from minidl "
                                                       "mlm distill (default: the teacher alone)")
    fill.add_argument("-k", type=at_least(1), default=5, help="tokens shown for each [MASK], the most probable first")
    fill.add_argument("--device", default="torch", help='"cpu" (NumPy), "torch" or "cuda"')
    fill.set_defaults(run=main_fill_mask)


def _corpus(args, length, max_vocab=8000, vocab=None):
    print("reading and tokenising the reviews (about 10-30 s) ...", flush=True)   # it was silent
    more = "more reviews (a larger --max-reviews, or none: all)" + ("" if vocab else " or a larger --max-vocab")
    return load_corpus(args.data, max_vocab=max_vocab, length=length, max_reviews=args.max_reviews, seed=args.seed,
                       vocab=vocab, more=more)


def _embeddings(args, corpus):
    """The starting embedding table that ``--init`` asks for (None: build_mlm's random one)."""
    if args.init in ("random", "teacher"):
        return None
    return cooccurrence_embeddings(corpus.token_lists, corpus.vocab, args.d_model, args.seed,
                                   log=lambda m: print(m, flush=True))


def _source(args):
    """What a pretraining or distillation run reads, besides its settings: a resumed run must read the same."""
    source = {"data": args.data, "max_reviews": args.max_reviews, "max_vocab": getattr(args, "max_vocab", None),
              "init": args.init, "resume_from": getattr(args, "resume_from", None)}
    if getattr(args, "teacher", None):
        source["teacher"] = file_sha256(args.teacher)
    return source


def _settings(args, max_len):
    return {"d_model": args.d_model, "num_heads": args.heads, "num_layers": args.layers, "d_ff": args.d_ff,
            "max_len": max_len, "dropout": args.dropout}


def _finished(args):
    """Whether --resume has nothing left to train: said before the reviews are read (about 14 s on IMDB)."""
    state = npz_meta(state_path(args.out)) if args.resume else {}
    finished = bool(state) and state["loop"]["step"] >= args.steps   # the first run's --steps: _refused checked
    if finished:
        print(f"{args.out} has finished its {state['offset']['step'] + args.steps} steps already: nothing to train")
    return finished


def main_pretrain(args):
    if problem := _refused(args):
        return _refuse("pretrain", problem)
    if _finished(args):
        return 0
    if args.resume_from or args.resume:
        model, vocab, _, meta = load_mlm(args.out if args.resume else args.resume_from, args.device,
                                         for_training=True)
        settings, history = meta["settings"], meta["history"]
        if args.resume_from and (clash := _clashes(args, settings, len(vocab))):   # they would be dropped
            return _refuse("pretrain", f"--resume-from {args.resume_from} goes on with its model's settings, not "
                                       f"{', '.join(clash)}: leave them out, or pretrain a new model")
        corpus = _corpus(args, settings["max_len"], vocab=vocab)
    else:
        corpus = _corpus(args, args.length, args.max_vocab)
        settings, history = _settings(args, args.length), None
        model = build_mlm(len(corpus.vocab), settings, args.device, args.seed, _embeddings(args, corpus))
    kept = f" (the model of {args.resume_from}: its settings, not the options')" if args.resume_from else ""
    print(f"pretraining on {len(corpus.train)} segments of up to {settings['max_len']} tokens from {corpus.texts} "
          f"reviews; vocabulary {len(corpus.vocab)}; {model.num_parameters():,} parameters{kept}", flush=True)
    train_mlm(model, corpus.train, corpus.vocab, args.steps, settings, args.out, cases=corpus.cases,
              batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every, time_limit=args.time_limit,
              seed=args.seed, device=args.device, role="teacher", history=history, resume=args.resume,
              source=_source(args), log=lambda m: print(m, flush=True))
    return 0


def _clashes(args, settings, vocab_size):
    """The options given other than their defaults that a --resume-from checkpoint's model, vocabulary
    (``vocab_size`` tokens) and ``settings`` overrule."""
    defaults = {**PRETRAIN_SHAPE, "dropout": DROPOUT, "max_len": PRETRAIN_LENGTH}   # pretrain's, in the options' order
    given = _settings(args, args.length)
    clashes = [f"{_option(key)} {given[key]} (it has {settings[key]})" for key in defaults
               if given[key] != defaults[key] and given[key] != settings[key]]
    if args.max_vocab < vocab_size:   # a ceiling: the first run's own --max-vocab, above what the corpus had, is kept
        clashes.append(f"--max-vocab {args.max_vocab} (it has {vocab_size} tokens)")
    if args.init != "cooccurrence":
        clashes.append(f"--init {args.init} (it has its trained embeddings)")
    return clashes


def _refused_by_teacher(args, teacher):
    """The reason the student ``args`` describes cannot learn from a teacher of ``teacher``'s settings, or None."""
    if args.init == "teacher" and args.d_model > teacher["d_model"]:
        return (f"--init teacher projects the teacher's embeddings, of width {teacher['d_model']}: give --d-model "
                f"at most that (got {args.d_model}), or another --init")
    if (args.hidden_weight or args.attention_weight) and args.layers > teacher["num_layers"]:
        return (f"--hidden-weight / --attention-weight match each student layer to its own teacher layer: give "
                f"--layers at most the teacher's {teacher['num_layers']} (got {args.layers}), or both weights 0")
    return None


def main_distill(args):
    if problem := _refused(args):
        return _refuse("distill", problem)
    if _finished(args):
        return 0
    # an int8 copy (mlm quantize) is refused as for training: its 3,506 "parameters" were printed as the teacher's
    teacher, vocab, _, meta = load_mlm(args.teacher, args.device, for_training=True)
    if problem := _refused_by_teacher(args, meta["settings"]):   # (found after reading the reviews, by function names)
        return _refuse("distill", problem)
    max_len = meta["settings"]["max_len"]
    corpus = _corpus(args, max_len, vocab=vocab)
    settings = _settings(args, max_len)
    student = build_mlm(len(vocab), settings, args.device, args.seed, _embeddings(args, corpus))
    if args.init == "teacher":
        start_from_teacher(student, teacher)
    print(f"distilling {teacher.num_parameters():,} -> {student.num_parameters():,} parameters", flush=True)
    train_mlm(student, corpus.train, vocab, args.steps, settings, args.out, teacher=teacher, cases=corpus.cases,
              batch_size=args.batch_size, lr=args.lr, alpha=args.alpha, temperature=args.temperature,
              hidden_weight=args.hidden_weight, attention_weight=args.attention_weight,
              head_weight=args.head_weight, eval_every=args.eval_every,
              time_limit=args.time_limit, seed=args.seed, device=args.device, role="student", resume=args.resume,
              source=_source(args), log=lambda m: print(m, flush=True))
    return 0


def main_evaluate(args):
    if args.out and (problem := _out_refused(args, lambda path: {"teacher", "student", "agreement"} <= json_keys(path),
                                             "minidl mlm evaluate", "teacher", "student")):
        return _refuse("evaluate", problem)
    teacher, vocab, _, meta = load_mlm(args.teacher, args.device)
    student, student_vocab, _, _ = load_mlm(args.student, args.device)
    if student_vocab != vocab:
        raise ValueError(f"{args.student} and {args.teacher} have different vocabularies; distil the student "
                         f"from this teacher (minidl mlm distill --teacher {args.teacher})")
    print("reading the test reviews for the held-out sentences (about 10 s) ...", file=sys.stderr, flush=True)
    cases = held_out_cases(load_imdb(args.data)["test"].texts, vocab, args.cases, 0,
                           more="fewer held-out sentences (--cases)", length=meta["settings"]["max_len"])
    print(f"both models' choices on {len(cases):,} sentences, then each timed three times ...",   # (silent:
          file=sys.stderr, flush=True)                                             # 13-30 s on two cores)
    result = compare(teacher, student, vocab, cases, args.teacher, args.student, device=args.device)
    if args.out:
        write_text(args.out, json.dumps(result, indent=2))
    print(json.dumps(result, indent=2) if args.json else _comparison_table(result))
    return 0


def _comparison_table(result):
    """``compare``'s result as the lines a reader wants: each model's numbers side by side."""
    teacher, student = result["teacher"], result["student"]
    rows = [("parameters (stored)", f"{teacher['parameters']:,}", f"{student['parameters']:,}", ""),
            ("file (MB)", f"{teacher['size_mb']:.2f}", f"{student['size_mb']:.2f}",
             f"{result['size_ratio']:.2f}x smaller"),
            ("sentences/s", f"{teacher['sentences_per_s']:,.0f}", f"{student['sentences_per_s']:,.0f}",
             f"{result['speed_ratio']:.2f}x faster"),
            ("top-1 accuracy", f"{teacher['accuracy']['top1']:.3f}", f"{student['accuracy']['top1']:.3f}", ""),
            ("top-5 accuracy", f"{teacher['accuracy']['top5']:.3f}", f"{student['accuracy']['top5']:.3f}", "")]
    lines = [f"teacher vs student on {result['sentences']:,} held-out fill-mask sentences, timed in this run",
             f"{'':<20} {'teacher':>12} {'student':>12}"]
    lines += [f"{name:<20} {a:>12} {b:>12}  {note}".rstrip() for name, a, b, note in rows]
    agreement = result["agreement"]
    lines.append(f"agreement: the teacher's first choice is the student's first in {agreement['top1']:.3f} of the "
                 f"sentences, among its top 5 in {agreement['top5']:.3f}")
    if "rank_limited_teacher" in result:
        limited = result["rank_limited_teacher"]
        lines.append(f"(the teacher through its best rank-{limited['width']} output table: "
                     f"{limited['agreement']['top1']:.3f} and {limited['agreement']['top5']:.3f})")
    return "\n".join(lines)


def main_quantize(args):
    # only an earlier int8 copy is replaced: a trained student or teacher at --out was, silently
    if problem := _out_refused(args, lambda path: is_mlm_checkpoint(path) and bool(npz_meta(path).get("int8")),
                               "minidl mlm quantize", "model", suffix=".npz"):
        return _refuse("quantize", problem)
    model, vocab, _, meta = load_mlm(args.model, "cpu")
    if meta.get("int8"):
        return _refuse("quantize", f"{args.model} is already an int8 copy; give the float checkpoint")
    report = quantize(model, embeddings=True)
    save_mlm(args.out, model, vocab, meta["settings"], meta["history"], meta["role"])
    before, after = os.path.getsize(args.model), os.path.getsize(args.out)
    print(f"int8: {len(report)} weight matrices (every Linear and the embedding table), each within half a step "
          f"of its scale (largest |W − q·scale|: {max(r.max_abs_error for r in report):.3g})")
    print(f"{args.model}: {before / 1e6:.2f} MB -> {args.out}: {after / 1e6:.2f} MB ({before / after:.2f}x smaller)")
    return 0


def main_finetune(args):
    from .finetune import STARTS, compare_pretraining

    if problem := _out_refused(args, lambda path: {"settings", "length"} <= json_keys(path), "minidl mlm finetune",
                               "student", "teacher"):
        return _refuse("finetune", problem)
    starts = args.starts or [name for name in STARTS if args.teacher or name != "teacher embeddings only"]
    # the runs' options: other starts already in --out are kept, and only when they ran with the same (a run
    # without --starts replaced the file, and with it the starts it did not run)
    options = {"student": file_sha256(args.student), "data": args.data, "length": args.length, "epochs": args.epochs,
               "batch_size": args.batch_size, "lr": args.lr, "train_limit": args.train_limit,
               "test_limit": args.test_limit, "seed": args.seed}
    result = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            result = json.load(f)
        if changed := differences(result.get("options", options), options, _option):
            return _refuse("finetune", f"{args.out} holds runs with other options ({changed}); give the same "
                                       f"options, or another --out")
    result["options"] = options

    def keep(done):   # each start as it ends: an interrupted run keeps them (--starts runs the others)
        result.update(done)
        write_text(args.out, json.dumps(result, indent=2))

    compare_pretraining(args.student, args.data, args.length, args.epochs, args.batch_size, args.lr, args.train_limit,
                        args.seed, args.device, starts, args.test_limit, args.teacher,
                        log=lambda m: print(m, flush=True), on_start=keep)
    for name in (name for name in STARTS if name in result):
        best = max(epoch["accuracy"] for epoch in result[name]["epochs"])
        print(f"{name:<23} test accuracy after each epoch: "
              + ", ".join(f"{e['accuracy']:.4f}" for e in result[name]["epochs"]) + f" (best {best:.4f})")
    return 0


def fill_mask(model, vocab, tokenizer, text, k=5, device="cpu", role="model"):
    """(list of per-[MASK] [(token, probability)] lists, seconds) for one text; a text longer than
    the ``role``'s positions is a TextEncodingError."""
    tokens = tokenizer(text)
    if MASK not in tokens:
        raise TextEncodingError(f"no {MASK} in {text!r}: write {MASK} (upper case, in brackets) where a word is "
                                f"missing, e.g. \"happy birthday to {MASK} !\"")
    if len(tokens) > (limit := model.position.max_len - 1):     # [CLS] takes one position
        raise TextEncodingError(f"the text has {len(tokens)} tokens; the {role} reads at most {limit}: shorten it")
    tick = time.perf_counter()
    found = top_k(model, vocab, [tokens], k, device=device)[0]
    seconds = time.perf_counter() - tick
    return [[(vocab.id_to_token[int(i)], float(p)) for i, p in zip(ids, probabilities)]
            for ids, probabilities in found], seconds


def main_fill_mask(args):
    models = [("teacher", args.teacher)] + ([("student", args.student)] if args.student else [])
    columns, notes = [], []
    for role, path in models:
        model, vocab, tokenizer, _ = load_mlm(path, args.device)
        fill_mask(model, vocab, tokenizer, args.text, args.k, args.device, role)           # warm-up
        columns.append((role, *fill_mask(model, vocab, tokenizer, args.text, args.k, args.device, role)))
        # the words each model reads as [UNK] (one note, of the last model's vocabulary, said not whose)
        if unknown := [t for t in tokenizer(args.text) if t not in vocab and t != "[MASK]"]:
            notes.append(f"(not in the {role}'s vocabulary, read as [UNK]: {', '.join(dict.fromkeys(unknown))})")
    print(args.text, *notes, sep="\n")
    for m in range(len(columns[0][1])):
        if len(columns[0][1]) > 1:
            print(f"[MASK] {m + 1}")
        print("  " + "".join(f"{role + f' ({seconds * 1e3:.1f} ms)':<32}" for role, _, seconds in columns))
        shown = min(len(found[m]) for _, found, _ in columns)     # top_k stops at the vocabulary's last word
        for rank in range(shown):
            print("  " + "".join(f"{f'{found[m][rank][0]}  {found[m][rank][1]:.3f}':<32}" for _, found, _ in columns))
    return 0

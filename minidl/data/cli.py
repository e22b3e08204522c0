"""The ``minidl data`` and ``minidl vectors`` commands: the IMDB reviews and word vectors from
the command line. The library code they call lives in ``imdb``, ``vectors`` and
``vectors_eval``; this module only parses, prints and returns exit codes.

    minidl data download | info
    minidl vectors build --out vectors.txt ; minidl vectors neighbours vectors.txt good bad
    minidl vectors eval vectors.txt
"""
from __future__ import annotations

import os
import re
import sys
import time

from ..command import at_least
from ..io import WriteError, check_writable
from . import vectors_eval
from .errors import CorruptDataError, DataFormatError, DataNotFoundError, DownloadError, SettingError
from .imdb import (LABELLED, OFFICIAL_URL, UNLABELLED, _dataset, _kind, default_data_dir, download_imdb, find_imdb,
                   load_imdb, load_imdb_unlabelled, read_imdb_reviews)
from .sgns import build_sgns, check_arguments
from .text import Tokenizer
from .vectors import (PROBE_WORDS, build_ppmi_svd, check_ppmi_arguments, format_neighbours, load_glove,
                      save_glove)

# each --method: the check of its settings, its builder, and its own settings with their defaults
_METHODS = {"ppmi": (check_ppmi_arguments, build_ppmi_svd, {"smoothing": 0.75, "power": 0.5}),
            "sgns": (check_arguments, build_sgns, {"negatives": 5, "epochs": 3})}


def add_arguments(commands):
    data = commands.add_parser("data", help="the IMDB reviews: download them, or see what is there")
    data_what = data.add_subparsers(dest="what", required=True)
    download = data_what.add_parser("download", help="fetch aclImdb_v1.tar.gz (84 MB), verify its SHA-256, save it")
    download.set_defaults(run=main_download)
    download.add_argument("--dest", help="folder to save into (default: ~/.cache/minidl)")
    download.add_argument("--url", help="where from (default: the official Stanford URL)")
    download.add_argument("--sha256", help="expected SHA-256 (default: the official archive's, for the official URL)")
    download.add_argument("--force", action="store_true", help="download again even if a verified copy is there")
    info = data_what.add_parser("info", help="where the IMDB data is; reviews per split and class, decode errors, time")
    info.set_defaults(run=main_info)
    info.add_argument("--path", help="archive, aclImdb/ folder or CSV (default: $MINIDL_DATA, then ~/.cache/minidl)")
    info.add_argument("--tokenize", action="store_true", help="also tokenise every review and time it")

    vectors = commands.add_parser("vectors",
                                  help="word vectors: build PPMI-SVD or SGNS vectors from IMDB, neighbours, "
                                       "evaluate")
    vectors_what = vectors.add_subparsers(dest="what", required=True)
    build = vectors_what.add_parser("build", help="PPMI + truncated SVD (or skip-gram with negative sampling) over "
                                                  "the IMDB train + unlabelled reviews, saved in the GloVe text format")
    build.set_defaults(run=main_build)
    build.add_argument("--out", required=True, help="the .txt (or .txt.gz) file to write")
    build.add_argument("--method", choices=("ppmi", "sgns"), default="ppmi",
                       help="ppmi: PPMI + truncated SVD (seconds to minutes); sgns: skip-gram with negative "
                            "sampling, word2vec, trained here (about 5 minutes on two cores, 13 beside a test run)")
    for option, kind, default, text in (
            ("--dim", int, 100, "vector size"),
            ("--window", int, 5, "context words each side; for sgns the largest reach of the dynamic window"),
            ("--min-count", int, 5, "leave out words seen fewer times than this"),
            ("--max-vocab", int, 30000, "keep this many of the most frequent words"),
            ("--smoothing", float, 0.75, "ppmi only: context-distribution smoothing alpha"),
            ("--power", float, 0.5, "ppmi only: vectors = U * S**power"),
            ("--negatives", int, 5, "sgns only: negative words drawn per (word, context) pair"),
            ("--epochs", int, 3, "sgns only: passes over the reviews")):
        build.add_argument(option, type=kind, default=default, help=text)
    build.add_argument("--seed", type=at_least(0), default=0,
                       help="the randomised SVD's seed (ppmi) or the training's seed (sgns)")
    build.add_argument("--data", help="IMDB archive/folder (default: $MINIDL_DATA, ~/.cache/minidl)")
    build.add_argument("--overwrite", action="store_true", help="replace a file already at --out (without it, "
                                                                "such an --out is refused)")
    neighbours = vectors_what.add_parser("neighbours", help="nearest words by cosine similarity")
    neighbours.set_defaults(run=main_neighbours)
    neighbours.add_argument("file", help="vectors in the GloVe text format (.txt or .txt.gz)")
    neighbours.add_argument("words", nargs="*", help="words to look up (default: a fixed list of sentiment words)")
    neighbours.add_argument("-k", type=at_least(1), default=10, help="neighbours per word")
    check = vectors_what.add_parser("eval", help="logistic regression on mean word vectors vs random vectors, "
                                                 "IMDB train -> test")
    check.set_defaults(run=main_eval)
    check.add_argument("file", help="vectors in the GloVe text format (.txt or .txt.gz)")
    check.add_argument("--data", help="IMDB archive/folder (default: $MINIDL_DATA, ~/.cache/minidl)")
    check.add_argument("--steps", type=at_least(1), default=500, help="logistic-regression steps")
    check.add_argument("--seed", type=at_least(0), default=0, help="random seed of the random vectors and the training")
    check.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')


def main_download(args):
    """``minidl data download [--dest DIR] [--url URL] [--sha256 HEX] [--force]``; 1 on failure."""
    if args.url is not None and not args.url.strip():
        print("minidl data download: --url is empty; give the archive's URL, or leave --url out for Stanford's",
              file=sys.stderr)
        return 2
    if args.sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", args.sha256):
        print(f"minidl data download: --sha256 {args.sha256!r} is not a SHA-256 (64 hexadecimal digits); copy it "
              f"again, or leave it out", file=sys.stderr)
        return 2
    check_writable(args.dest or default_data_dir(), "--dest", folder=True)   # before the download, not after
    try:
        path = download_imdb(args.dest, url=args.url or OFFICIAL_URL, sha256=args.sha256 or None, force=args.force)
    except (DownloadError, CorruptDataError) as e:
        print(f"minidl data download: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def main_info(args):
    """``minidl data info [--path P] [--tokenize]``: counts per split and class, decode errors, timings."""
    try:
        return _info(args.path, args.tokenize)
    except (DataNotFoundError, CorruptDataError, DataFormatError) as e:
        print(f"minidl data info: {e}", file=sys.stderr)
        return 1


def _info(path, tokenize):
    start = time.perf_counter()
    source = find_imdb(path)
    kind = _kind(source)
    if kind == "csv":
        splits = load_imdb(source, split="course")
        unlabelled = []
    else:   # (silent for the seconds of the read: the source line comes once it is read)
        print(f"reading the reviews of {source} (about 10 s) ...", file=sys.stderr, flush=True)
        reviews = read_imdb_reviews(source, LABELLED + UNLABELLED)
        labelled = [r for r in reviews if r.label != "unsup"]
        splits = {s: _dataset([r for r in labelled if r.split == s], f"imdb/{s}", source) for s in ("train", "test")}
        unlabelled = [r for r in reviews if r.label == "unsup"]
    seconds = time.perf_counter() - start
    print(f"IMDB reviews from {source} ({kind})")   # once read: a file that is not IMDB's is refused alone, first
    print(f"{'split':<8}{'neg':>8}{'pos':>8}{'total':>8}{'decode errors':>15}")
    for name, ds in splits.items():
        counts = ds.class_counts()
        print(f"{name:<8}{counts['neg']:>8,}{counts['pos']:>8,}{len(ds):>8,}{ds.info['decode_errors']:>15,}")
    if kind != "csv":
        print(f"{'unsup':<8}{'':>8}{'':>8}{len(unlabelled):>8,}{sum(r.bad_bytes for r in unlabelled):>15,}")
    print(f"loaded in {seconds:.1f} s")
    if tokenize:
        texts = [t for ds in splits.values() for t in ds.texts] + [r.text for r in unlabelled]
        start = time.perf_counter()
        tokenizer = Tokenizer()
        lengths = sorted(len(tokenizer(text)) for text in texts)
        seconds = time.perf_counter() - start
        print(f"tokenised {len(texts):,} reviews (course cleaning, no length limit) in {seconds:.1f} s: "
              f"{sum(lengths) / len(lengths):.1f} words per review on average, median {lengths[len(lengths) // 2]}, "
              f"max {lengths[-1]}")
    return 0


def main_build(args, log=print):
    """``minidl vectors build --out FILE [--method ppmi|sgns]``: PPMI-SVD (the default) or SGNS
    vectors from the IMDB training and unlabelled reviews (75,000; never the test reviews),
    saved in the GloVe text format."""
    # bad settings and an --out that cannot be written are refused before the reviews are read
    common = dict(dim=args.dim, window=args.window, min_count=args.min_count, max_vocab=args.max_vocab)
    method = getattr(args, "method", "ppmi")
    check, build, defaults = _METHODS[method]
    own = {name: getattr(args, name, default) for name, default in defaults.items()}  # checked here, passed to build
    check(**common, **own)
    for other, (_, _, settings) in _METHODS.items():   # another method's options changed nothing, silently
        given = [name for name, value in settings.items() if getattr(args, name, value) != value]
        if other != method and given:
            raise SettingError(f"--{given[0]} is an option of --method {other}, and --method is {method}")
    check_writable(args.out)
    if not args.out.endswith((".txt", ".txt.gz")):   # x.npz: GloVe text under a checkpoint's name
        raise SettingError(f"--out {args.out}: the vectors are written in the GloVe text format; give a .txt or "
                           f".txt.gz path, like {os.path.splitext(args.out)[0]}.txt")
    if os.path.exists(args.out) and not getattr(args, "overwrite", False):   # (a GloVe file of the user's went)
        raise WriteError(f"--out {args.out} is there; pass --overwrite to replace it, or give another path")
    source = find_imdb(args.data)   # a table of one's own, or none, was refused after "reading and tokenising"
    if source.suffix.lower() == ".csv":
        raise DataFormatError(f"{source} is a CSV (the Kaggle IMDB CSV or a table of your own), which has no "
                              f"unlabelled reviews; vectors build reads them: give --data the archive or its "
                              f"aclImdb/ folder (`minidl data download`)")
    log("reading and tokenising the IMDB training and unlabelled reviews (about 10 s) ...")
    start = time.perf_counter()
    texts = list(load_imdb(source)["train"].texts) + list(load_imdb_unlabelled(source))
    token_lists = Tokenizer().tokenize_all(texts)
    log(f"tokenised {len(texts):,} reviews (IMDB train + unlabelled) [{time.perf_counter() - start:.1f} s]")
    words, matrix = build(token_lists, **common, **own, seed=getattr(args, "seed", 0), log=log)
    save_glove(args.out, words, matrix)
    log(f"wrote {len(words):,} {matrix.shape[1]}-d vectors to {args.out} in {time.perf_counter() - start:.1f} s")
    for word in PROBE_WORDS:
        log(format_neighbours(word, words, matrix))
    return 0


def main_neighbours(args, log=print):
    """``minidl vectors neighbours FILE WORD ...``: the nearest words by cosine similarity."""
    words, matrix = load_glove(args.file, log=log)
    for word in args.words or PROBE_WORDS:
        log(format_neighbours(word, words, matrix, getattr(args, "k", 10)))
    return 0


def main_eval(args, log=print):
    """``minidl vectors eval FILE``: logistic regression on mean word vectors, IMDB train → test,
    against the same model on random vectors; see ``minidl.data.vectors_eval``."""
    vectors_eval.main(args, log=log)
    return 0

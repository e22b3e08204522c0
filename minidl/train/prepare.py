"""From a ``TrainConfig`` to encoded train / validation / test splits, a vocabulary built on
the training split only, and (optionally) pretrained vectors aligned to it.

Preparing IMDB means tokenising 50,000 reviews, so results are cached per process: the
runs of a sweep that share data settings prepare it once.
"""
from __future__ import annotations

import collections
import functools
import json
import os
import sys
import warnings
from dataclasses import dataclass, replace

import numpy as np

from ..data import synthetic
from ..data.batching import encode_dataset
from ..data.dataset import TextDataset
from ..data.errors import DataFormatError, DataWarning
from ..data.imdb import load_imdb
from ..data.tabular import listing, load_table
from ..data.text import Tokenizer
from ..data.vectors import load_glove
from ..data.vocab import Vocabulary
from ..io import file_sha256
from .config import ConfigError, TrainConfig, split_commas

DATA_KEYS = ("data", "data_path", "validation_data", "test_data", "text_column", "label_column", "label_names",
             "max_length", "train_windows", "min_word_length", "keep_digits", "contractions", "max_vocab", "min_freq",
             "validation", "train_limit", "seed", "embeddings", "teacher", "unlabelled")
BUILT_IN = ("synthetic", "imdb")


@dataclass
class Prepared:
    tokenizer: Tokenizer
    vocab: Vocabulary
    label_names: list
    train: object        # EncodedDataset
    validation: object   # EncodedDataset, or None
    test: object         # EncodedDataset
    embeddings: object = None  # (V, E) float32 aligned to vocab, or None
    teacher_logits: object = None  # (N_train, C) float32, the teacher's logits by review index, or None
    files: dict = None             # the user's data files read: see ``data_files``


def load_splits(config):
    """{"train", "validation" (None: carve it from train), "test"} TextDatasets for the
    configured source. Your own files: --data, and --validation-data / --test-data if given;
    without a test file 20 % of --data (seeded) is the test split -- which leaks if the file
    holds near-copies of one text (phrases of one sentence, say): give a separate test file then."""
    if config.data in BUILT_IN and (config.validation_data or config.test_data):
        raise DataFormatError(f"--validation-data / --test-data go with --data FILE (your own table); the "
                              f"{config.data} data brings its own splits")
    if config.data == "synthetic":
        return {**synthetic.make_corpus(), "validation": None}  # fixed data; the seed varies init and order
    if config.data == "imdb":
        return {**load_imdb(config.data_path, split="official"), "validation": None}
    values, names = parse_label_names(config.label_names)
    train = read_table(config.data, config, values, training=True)
    values, names = values or train.label_names, names or train.label_names
    train = relabel(train, values, names, "training")
    validation, test = (relabel(read_table(path, config), values, names, "training") if path else None
                        for path in (config.validation_data, config.test_data))
    if test is None:
        train, test = train.split(0.2, seed=0, names=("train", "test"))
    return {"train": train, "validation": validation, "test": test}


def split_by_movie(dataset, fraction, seed=0):
    """(train, validation) of ``dataset`` (IMDB's training split): a seeded random set of
    movies whose reviews make up about ``fraction`` of it go to validation, so no movie is on
    both sides.

    Why: IMDB's test reviews are of other movies than its training reviews, while a random
    fifth of train shares its movies (up to 30 reviews each) with the rest: a model scores
    there on names, plots and actors it has already seen labelled, so early stopping read
    4 points better on such a validation split than on the test. Held out by movie, the
    validation reviews are as new as the test ones.

    The movies are ``dataset.info["movies"]`` (from the archive's URL lists, ``data.imdb``);
    the movies are shuffled (``seed``) and taken while that brings the count nearer to
    fraction · N (a movie has at most 30 of the 25,000 reviews, so the size is off by at
    most 15). A review of unknown movie is a movie of its own. With no movie known at all
    (a copy without the URL lists) this is the random split, ``dataset.split``, and a
    ``DataWarning`` says that validation then shares movies with training.
    """
    movies = dataset.info.get("movies") or [None] * len(dataset)
    if all(movie is None for movie in movies):
        warnings.warn(f"{dataset.info.get('source', dataset.name)} lists no movies (the official archive's "
                      f"train/urls_pos.txt and urls_neg.txt): the validation reviews are drawn at random and share "
                      f"movies with the training reviews, so validation scores read higher than test scores",
                      DataWarning, stacklevel=2)
        return dataset.split(fraction, seed=seed)
    keys = [movie if movie is not None else f"#{i}" for i, movie in enumerate(movies)]  # "#i": review i alone
    names, movie_of = np.unique(keys, return_inverse=True)
    if len(names) < 2:
        raise DataFormatError(f"{dataset.name}: all {len(dataset)} reviews are of one movie; none can be held out "
                              f"for validation by movie")
    order = np.random.default_rng(seed).permutation(len(names))
    held = np.cumsum(np.bincount(movie_of.reshape(-1))[order])          # reviews held out by the first k movies
    k = min(max(int(np.argmin(np.abs(held - fraction * len(dataset)))) + 1, 1), len(names) - 1)
    chosen = np.zeros(len(names), dtype=bool)
    chosen[order[:k]] = True
    validation = chosen[movie_of.reshape(-1)]
    return (dataset.subset(np.flatnonzero(~validation), f"{dataset.name}/train"),
            dataset.subset(np.flatnonzero(validation), f"{dataset.name}/validation"))


def windows(dataset, token_lists, length):
    """Each review's successive windows of ``length`` words (words 0..L-1, L..2L-1, ...) as
    examples with the review's label: (``dataset.subset`` with one row per window, its text and
    per-review info those of the review, and the windows' token lists). A review's first window is always kept,
    a later one only with at least L/2 words, so no example is a stray tail of a few words.
    More of each review to learn from; what the model reads at test time is unchanged."""
    rows, kept = [], []
    for i, tokens in enumerate(token_lists):
        for start in range(0, max(len(tokens), 1), length):
            window = tokens[start:start + length]
            if start == 0 or 2 * len(window) >= length:
                rows.append(i)
                kept.append(window)
    return dataset.subset(rows, f"{dataset.name} ({length}-word windows)"), kept


def parse_label_names(spec):
    """--label-names -> (the file's label values in class order, the names shown), or (None, None).

        "neg,pos"      -> (["neg", "pos"], ["neg", "pos"])
        "0=neg,1=pos"  -> (["0", "1"], ["neg", "pos"])
    """
    if not spec:
        return None, None
    parts = split_commas(spec)
    pairs = [part.split("=", 1) if "=" in part else (part, part) for part in parts]
    values, names = [v.strip() for v, _ in pairs], [n.strip() for _, n in pairs]
    mixed = 0 < sum("=" in part for part in parts) < len(parts)     # "0=neg,pos": is pos a value or a name?
    if mixed or len(parts) < 2 or len(set(values)) < len(values) or len(set(names)) < len(names):
        raise DataFormatError(f'--label-names {spec!r}: give two or more distinct labels, all as "neg,pos" or all '
                              f'as "0=neg,1=pos" (the file\'s value=the name shown)')
    if clash := next((name for i, name in enumerate(names) if name in values and values.index(name) != i), None):
        # "1=0,2=1": is a "1" in a file class 0 (a value) or class 1 (a name)? every row went to class 1
        raise DataFormatError(f"--label-names {spec!r}: the name {clash!r} is another class's label in the file, so "
                              f"a {clash!r} in a file could be either class; give names that are not labels, e.g. "
                              f"{','.join(f'{value}=class{value}' for value in values)}")
    return values, names


def read_table(path, config, values=None, training=False):
    """Your labelled file with the config's columns; each of --text-column / --label-column may
    list alternatives ("sentence,content"): the file uses the first pair it has. ``values``:
    the labels in class order (others are refused); None: the file's sorted labels.
    ``training``: the file trains a model, so it must have two classes and rows enough to
    split; a file that is only scored may hold a single row of a single class."""
    limits = {} if training else {"min_rows": 1, "min_classes": 1}
    text_columns, label_columns = (split_commas(config.text_column), split_commas(config.label_column))
    if training and (same := [name for name in text_columns if name in label_columns]):   # test accuracy 1.0
        raise ConfigError(f"--text-column and --label-column both name {same[0]!r}: the model would read the label; "
                          f"give two columns")
    last = None
    for text_column in text_columns:
        for label_column in label_columns:
            try:
                return load_table(path, text_column=text_column, label_column=label_column, label_names=values,
                                  **limits)
            except DataFormatError as error:
                if ": no column " not in str(error):
                    raise
                last = error
    raise DataFormatError(f"{last} (tried text columns {text_columns}, label columns {label_columns})")


def relabel(dataset, values, names, whose):
    """``dataset`` with its labels mapped by name onto classes 0..C-1, class i being
    ``values[i]`` (the file's value) or ``names[i]`` (the name shown): the order of another
    file's labels never matters. Labels that are neither are refused, both sets listed."""
    lookup = {**{v: i for i, v in enumerate(values)}, **{n: i for i, n in enumerate(names)}}
    if unknown := [label for label in dataset.label_names if label not in lookup]:
        known = values if values == names else [f"{v}={n}" for v, n in zip(values, names)]
        shown = listing([repr(label[:40] + "..." if len(label) > 40 else label) for label in map(str, unknown)])
        # (they were all listed: with --label-column text, every review)
        raise DataFormatError(f"{dataset.info.get('source', dataset.name)}: labels {shown} are not among the "
                              f"{whose} labels {known}; fix the file, or its --label-column")
    index = np.array([lookup[label] for label in dataset.label_names], dtype=np.int64)
    return TextDataset(dataset.texts, index[dataset.labels] if len(dataset) else dataset.labels, list(names),
                       dataset.name, dataset.info)


def _check_split(config, train, validation):
    """Refuse a --validation share that leaves either side empty, before any tokenising (training on
    it would end in NumPy's "need at least one array to concatenate")."""
    of = f"--validation {config.validation} of {len(train) + len(validation)} reviews"
    if not len(validation):
        raise ConfigError(f"{of} leaves no validation reviews; raise --validation or --train-limit, or set "
                          f"--validation 0")
    if not len(train):
        raise ConfigError(f"{of} leaves no training reviews; lower --validation or raise --train-limit")


def _check_classes(config, whole, train):
    """Refuse a class of the label names with no training row, before any tokenising: the model never
    learned it, never predicted it, and a validation split of one class stopped training at once at accuracy
    1.0. ``whole``: the training split before --train-limit and the validation share."""
    absent = [i for i in range(len(train.label_names)) if not np.any(train.labels == i)]
    if config.data in BUILT_IN or not absent:
        return
    name, limit, kept = train.label_names[absent[0]], config.train_limit, np.any(whole.labels == absent[0])
    if not kept:   # --data has no row of it (a class of --label-names), or the test split took them all
        raise ConfigError(f"class {name!r} has no training row: " + (
            f"{config.data} has no row of it; add rows of it, or leave it out of --label-names" if config.test_data
            else f"the test split of {config.data} took its rows; add rows of it, or give --test-data"))
    if limit and not np.any(whole.labels[:limit] == absent[0]):
        order = ", which are sorted by label" if np.all(np.diff(whole.labels) >= 0) else ""
        raise ConfigError(f"class {name!r} has no training row: --train-limit {limit} took the first {limit} training "
                          f"rows of {config.data}{order}; shuffle the file or raise the limit")
    raise ConfigError(f"class {name!r} has no training row: the validation split of {config.data} took its rows; "
                      f"give --validation-data, or add rows of it")


def prepare(config):
    key = json.dumps({k: getattr(config, k) for k in DATA_KEYS}, sort_keys=True)
    return _prepare_cached(key, _stamps(config))


def _stamps(config):
    """The size and time of change of the user's data files and word vectors: a file edited since is prepared again
    (vectors rewritten in a notebook were read from the cache as they were)."""
    paths = [*own_files(config).values(), config.embeddings]
    stats = [os.stat(path) if path and os.path.isfile(path) else None for path in paths]
    return tuple(st and (st.st_size, st.st_mtime_ns) for st in stats)


def own_files(config):
    """{option: path} of the user's own data files that ``config`` reads (none for a built-in source)."""
    return {key: path for key in ("data", "validation_data", "test_data")
            if (path := getattr(config, key)) not in (None, *BUILT_IN)}


@functools.lru_cache(maxsize=2)
def _prepare_cached(key, stamps):
    config = TrainConfig.from_dict(json.loads(key))
    splits = load_splits(config)
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    whole = train
    if config.train_limit:
        train = train.subset(np.arange(min(config.train_limit, len(train))))
    if validation is None and config.validation:    # IMDB: held out by movie, as its test split is
        train, validation = (split_by_movie(train, config.validation, seed=config.seed) if config.data == "imdb"
                             else train.split(config.validation, seed=config.seed))
        _check_split(config, train, validation)
    _check_classes(config, whole, train)
    tokenizer = Tokenizer(max_length=config.max_length, min_word_length=config.min_word_length,
                          keep_digits=config.keep_digits, contractions=config.contractions)
    if config.train_windows:
        train, train_tokens = windows(train, replace(tokenizer, max_length=None).tokenize_all(train.texts),
                                      config.max_length)
    else:
        train_tokens = tokenizer.tokenize_all(train.texts)
    vocab = Vocabulary.build(train_tokens, max_size=config.max_vocab, min_freq=config.min_freq)
    if len(vocab) == len(vocab.specials) and any(train_tokens):   # every review all <unk>: a constant classifier
        most = max(collections.Counter(w for tokens in train_tokens for w in tokens).values())
        raise ConfigError(f"--min-freq {config.min_freq} leaves no word in the vocabulary (the most frequent is seen "
                          f"{most} times); give --min-freq {most} or less")
    if not any(train_tokens):
        raise DataFormatError(f"{config.data}: every training review is empty after cleaning (it keeps words of "
                              f"letters only, {config.min_word_length} or more long); try --keep-digits or "
                              f"--min-word-length 1, or check --text-column")
    embeddings = None
    if config.embeddings:
        # what was found goes to stderr: stdout stays the command's table or JSON
        embeddings, coverage = load_glove(config.embeddings, vocab=vocab,
                                          log=lambda line: print(line, file=sys.stderr))
        if not coverage.found:   # a random table (frozen with --freeze-embeddings), said in passing
            raise DataFormatError(f"--embeddings {config.embeddings}: none of the vocabulary's {coverage.total:,} "
                                  f"words has a vector there; give vectors of the data's words (minidl vectors build)")
    teacher_logits = None
    if config.teacher:       # the vocabulary stays that of the labelled reviews
        from .teacher import with_teacher

        train, train_tokens, teacher_logits = with_teacher(train, train_tokens, tokenizer, config)
    encode = functools.partial(encode_dataset, tokenizer=tokenizer, vocab=vocab, max_length=config.max_length)
    return Prepared(tokenizer, vocab, list(train.label_names), encode(train, token_lists=train_tokens),
                    encode(validation) if validation is not None else None, encode(test), embeddings, teacher_logits,
                    data_files(config))


def data_files(config):
    """{option: {"file": as given, "absolute": its absolute path, "sha256": of its bytes}} for the
    user's own data files that ``config`` reads (none for a built-in source): what a checkpoint
    records, so that a file changed since is never taken for the one it was trained on."""
    return {key: {"file": path, "absolute": os.path.abspath(path), "sha256": file_sha256(path)}
            for key, path in own_files(config).items()}

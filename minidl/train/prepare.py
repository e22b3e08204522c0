"""From a ``TrainConfig`` to encoded train / validation / test splits, a vocabulary built on
the training split only, and (optionally) pretrained vectors aligned to it.

Preparing IMDB means tokenising 50,000 reviews, so results are cached per process: the
runs of a sweep that share data settings prepare it once.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from ..data import synthetic
from ..data.batching import encode_dataset
from ..data.text import Tokenizer
from ..data.vocab import Vocabulary

DATA_KEYS = ("data", "data_path", "text_column", "label_column", "max_length", "max_vocab", "min_freq",
             "validation", "train_limit", "seed", "embeddings")


@dataclass
class Prepared:
    tokenizer: Tokenizer
    vocab: Vocabulary
    label_names: list
    train: object        # EncodedDataset
    validation: object   # EncodedDataset, or None
    test: object         # EncodedDataset
    embeddings: object = None  # (V, E) float32 aligned to vocab, or None


def load_splits(config):
    """{"train", "test"} TextDatasets for the configured source."""
    if config.data == "synthetic":
        return synthetic.make_corpus()  # fixed data; the run seed varies only init and order
    if config.data == "imdb":
        from ..data.imdb import load_imdb

        return load_imdb(config.data_path, split="official")
    from ..data.tabular import load_table

    table = load_table(config.data, text_column=config.text_column, label_column=config.label_column)
    train, test = table.split(0.2, seed=0, names=("train", "test"))
    return {"train": train, "test": test}


def prepare(config):
    key = json.dumps({k: getattr(config, k) for k in DATA_KEYS}, sort_keys=True)
    return _prepare_cached(key)


@functools.lru_cache(maxsize=2)
def _prepare_cached(key):
    from .config import TrainConfig

    config = TrainConfig.from_dict(json.loads(key))
    splits = load_splits(config)
    train, test = splits["train"], splits["test"]
    if config.train_limit:
        train = train.subset(np.arange(min(config.train_limit, len(train))))
    validation = None
    if config.validation:
        train, validation = train.split(config.validation, seed=config.seed)
    tokenizer = Tokenizer(max_length=config.max_length)
    train_tokens = tokenizer.tokenize_all(train.texts)
    vocab = Vocabulary.build(train_tokens, max_size=config.max_vocab, min_freq=config.min_freq)
    encode = functools.partial(encode_dataset, tokenizer=tokenizer, vocab=vocab, max_length=config.max_length)
    embeddings = None
    if config.embeddings:
        from ..data.vectors import load_glove

        embeddings, _ = load_glove(config.embeddings, vocab=vocab)
    return Prepared(tokenizer, vocab, list(train.label_names), encode(train, token_lists=train_tokens),
                    encode(validation) if validation is not None else None, encode(test), embeddings)

"""``TrainConfig``: everything that defines one training run, JSON-able so a checkpoint
or a sweep's results file records exactly how a number was made."""
from __future__ import annotations

import dataclasses
import filecmp
import inspect
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..errors import MinidlError
from ..data.imdb import UNLABELLED_SIZE
from ..data.text import is_count
from ..models import MODELS


class ConfigError(MinidlError, ValueError):
    """A training setting that cannot work; the message names the option and what to give."""


@dataclass
class TrainConfig:
    # the model (see minidl.models.MODELS)
    model: str = "gru"
    hidden: object = 64                 # int, or a list of layer sizes for the MLP scorers
    embed_dim: int = 50
    model_options: dict = field(default_factory=dict)  # e.g. {"radius": 5}, {"nonlinearity": "tanh"}
    dropout: float = 0.0
    word_dropout: float = 0.0           # training words shown as <unk> with this probability
    embeddings: str = None              # a GloVe-format file; None: learned embeddings
    freeze_embeddings: bool = False
    embedding_freeze_steps: int = 0     # > 0: the table stays frozen this many steps, then learns (a frozen warm-up)
    # the data
    data: str = "synthetic"             # "synthetic", "imdb", or a CSV/TSV/JSONL file
    data_path: str = None               # where the IMDB data lives (default: $MINIDL_DATA, ~/.cache/minidl)
    validation_data: str = None         # your own validation file (then no fraction of train is held out)
    test_data: str = None               # your own test file (else 20 % of --data is carved out)
    text_column: str = "text"           # for your own tables; "a,b": each file uses the first it has
    label_column: str = "label"
    label_names: str = None             # "neg,pos": the file's labels in class order; "0=neg,1=pos": renamed
    max_length: int = 100               # keep the first words of each review (the course: 100)
    train_windows: bool = False         # train on each review's successive max_length-word windows
    min_word_length: int = 2            # the course's cleaning drops one-letter words ("a", "I"); 1 keeps them
    keep_digits: bool = False           # the course's cleaning keeps letters only; True keeps "10", "90s"
    contractions: str = None            # None: the course's "didn't" -> "didn"; "split": "did n't"; "not": "did not"
    max_vocab: int = 20000
    min_freq: int = 2
    validation: float = 0.1             # fraction of train held out for early stopping
    train_limit: int = None             # use only the first N training reviews (quick runs)
    # a teacher to learn from (knowledge distillation; minidl/train/teacher.py)
    teacher: str = None                 # a classifier checkpoint (best.npz of minidl train); "a,b": their mean
    unlabelled: int = 0                 # IMDB: this many unlabelled reviews join training, labelled by the teacher
    distill_alpha: float = 0.5          # the share of the label term; 1 - it: the teacher's soft targets
    temperature: float = 2.0            # softens both models' softmax in the soft term
    # optimisation
    batch_size: int = 32
    epochs: int = 5
    optimizer: str = "adam"             # "adam" or "adamw"
    lr: float = 1e-3
    embedding_lr: float = None          # the embedding table's own learning rate; None: lr
    weight_decay: float = 0.0
    weight_average: float = 0.0         # > 0: evaluate and keep a running average of the weights, this decay
    clip_norm: float = 5.0              # None: no clipping
    warmup_steps: int = 0               # > 0: linear warm-up, then linear decay to 0
    eval_every: int = None              # steps between validations; None: once per epoch
    patience: int = 3                   # validations without improvement before stopping; None: never
    metric: str = "accuracy"            # what "best" means: accuracy, f1 or auc (higher is better), or loss
    test_curve: bool = False            # also score the test split at every evaluation (for curves, never
                                        # for choosing the best checkpoint); adds test_loss, test_accuracy
    seed: int = 0
    device: str = "cpu"
    bucket: bool = True                 # batch reviews of similar length together

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(values) - known):
            raise ValueError(f"unknown training settings {unknown}; known ones: {sorted(known)}")
        return cls(**values)

    def check(self):
        """Refuse settings that cannot train, before any work: raises ``ConfigError`` naming the
        setting as the command line spells it, the value, and what would do."""
        _check_kinds(self)
        _check_numbers(self)
        _check_choices(self)
        _check_model(self)
        check_files(self)
        _check_teacher(self)
        return self

    def model_config(self):
        """Keyword arguments for ``minidl.models.build_model`` (besides the vocabulary size)."""
        return {"hidden": self.hidden, "embed_dim": self.embed_dim, "dropout": self.dropout, **self.model_options}


def as_option(name):
    """The command-line option that sets the setting ``name``: train_limit -> --train-limit."""
    return "--" + name.replace("_", "-")


def split_commas(text):
    """``"a, b,,c"`` -> ["a", "b", "c"]: a setting that lists several values (--teacher, --text-column)."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


# (setting, smallest allowed value, may it be None): whole numbers and positive reals
_AT_LEAST = (("embed_dim", 1, False), ("max_length", 1, False), ("min_word_length", 1, False), ("max_vocab", 3, False), ("min_freq", 1, False),
             ("batch_size", 1, False), ("epochs", 1, False), ("warmup_steps", 0, False),
             ("embedding_freeze_steps", 0, False), ("eval_every", 1, True),
             ("patience", 1, True), ("train_limit", 1, True), ("unlabelled", 0, False), ("seed", 0, False))


def _check_kinds(config):
    """A true/false setting takes only True/False and a text one no list or dict: a sweep's
    ``--set test_curve=off`` is the text "off", which as a truth value would switch it on."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.type == "bool" and not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{as_option(f.name)} must be true or false (JSON: true, false), got {value!r}")
        if f.type == "str" and isinstance(value, (list, dict)):
            raise ConfigError(f"{as_option(f.name)} must be text, got {value!r}")


def _check_numbers(config):
    for name, low, optional in _AT_LEAST:
        value = getattr(config, name)
        if value is None and optional:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{as_option(name)} must be a whole number >= {low}, got {value!r}")
    for name in ("validation", "dropout", "word_dropout", "weight_average"):     # fractions
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(f"{as_option(name)} must lie in [0, 1), got {value!r}")
    for name, positive, optional in (("lr", False, False), ("embedding_lr", False, True), ("weight_decay", False, False),
                                     ("clip_norm", True, True)):
        value = getattr(config, name)
        if value is None and optional:
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ConfigError(f"{as_option(name)} must be a number {'>' if positive else '>='} 0"
                              f"{' (or none)' if optional else ''}, finite, got {value!r}")


def _check_choices(config):
    for name, choices in (("optimizer", ("adam", "adamw")), ("metric", ("accuracy", "f1", "auc", "loss")),
                          ("contractions", (None, "split", "not"))):
        if getattr(config, name) not in choices:
            raise ConfigError(f"{as_option(name)} must be one of {', '.join(filter(None, choices))}"   # None: left out
                              f"{' (or left out)' if None in choices else ''}, got {getattr(config, name)!r}")
    device = str(config.device)
    if device not in ("cpu", "numpy", "torch", "torch:cpu") and not (
            device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f'--device must be "cpu" (NumPy), "torch" (PyTorch on the CPU) or "cuda"/"cuda:N", '
                          f"got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: PyTorch sees no CUDA GPU on this machine; use --device torch "
                              f"(PyTorch on the CPU) or cpu (NumPy)")


def _check_model(config):
    if config.model not in MODELS:
        raise ConfigError(f"--model {config.model!r} is not a model; choose one of {', '.join(MODELS)}")
    cls = MODELS[config.model]
    sizes = config.hidden if isinstance(config.hidden, list) else [config.hidden]
    if isinstance(config.hidden, list) and not cls.hidden_list:
        raise ConfigError(f"--hidden {config.hidden}: a list of layer sizes is for "
                          f"{', '.join(n for n, c in MODELS.items() if c.hidden_list)}; {config.model} takes one "
                          f"whole number")
    if not sizes or not all(map(is_count, sizes)):
        raise ConfigError(f"--hidden must be a whole number >= 1 (or, for the MLP scorers, a list of them), "
                          f"got {config.hidden!r}")
    if config.embedding_freeze_steps and config.freeze_embeddings:
        raise ConfigError(f"--embedding-freeze-steps {config.embedding_freeze_steps} lets the embedding table learn "
                          f"after that many steps, --freeze-embeddings keeps it frozen throughout: give one of them")
    if config.freeze_embeddings and (config.embeddings is None or config.embedding_lr is not None):  # (ignored)
        raise ConfigError("--freeze-embeddings keeps the table of --embeddings FILE fixed: give it with --embeddings, "
                          "and without --embedding-lr (a frozen table does not learn at any rate)")
    if not isinstance(config.model_options, dict):
        raise ConfigError(f"--model-options must be a JSON object like '{{\"radius\": 5}}', "
                          f"got {config.model_options!r}")
    flags = {"vocab_size": "--max-vocab", "hidden": "--hidden", cls.width_option: "--hidden",
             "embed_dim": "--embed-dim", "dropout": "--dropout"}
    accepted = _keywords(cls)
    if unknown := sorted(set(config.model_options) - accepted):
        raise ConfigError(f"--model-options {unknown}: {config.model} has no such setting; it takes "
                          f"{sorted(accepted - set(flags) - {'padding_idx'})}")
    taken = [name for name in config.model_options if name in flags]
    if taken:   # the option would silently win over the flag, which the run's records show
        raise ConfigError(f"--model-options {taken[0]!r}: {flags[taken[0]]} sets it; give {flags[taken[0]]} instead")
    _try_build(cls, config)


def _try_build(cls, config):
    """Build the model once on a 3-word vocabulary (NumPy; the random state put back): a value its
    constructor refuses (a radius of -1, heads that do not divide the width) is said before any work, and
    a padding_idx other than the vocabulary's pad id (which froze a real word's vector at zero)."""
    if (pad := config.model_options.get("padding_idx", 0)) != 0 or type(pad) is not int:   # older records hold 0
        raise ConfigError(f"--model-options padding_idx {pad!r}: the vocabulary sets it (its pad id, 0); leave it out")
    state = backend.rng_state()
    try:
        cls(3, **config.model_config())
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--model {config.model} cannot be built with these settings: {e}") from None
    finally:
        backend.set_rng_state(*state)


def _keywords(cls):
    """The keyword arguments a model class accepts, its base classes' included."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
    return names - {"device", "dtype", "num_classes", "embeddings", "freeze_embeddings"}


def check_files(config):
    """--data (and --validation-data, --test-data, --embeddings) name files; --data-path only with --data imdb."""
    def missing(path):
        return "is a folder, not a file" if os.path.isdir(path) else "no such file"

    if config.data not in ("synthetic", "imdb") and not os.path.isfile(config.data):
        raise ConfigError(f'--data {config.data!r}: {missing(config.data)}; give "synthetic", "imdb" or a '
                          f"CSV/TSV/JSONL file of your own")
    if config.data_path is not None and config.data != "imdb":   # it was ignored without a word
        raise ConfigError(f"--data-path {config.data_path!r}: it says where the IMDB data is, for --data imdb; "
                          f"--data is {config.data!r}. For a table of your own give --data FILE")
    _check_columns(config)
    for name in ("validation_data", "test_data", "embeddings"):
        path = getattr(config, name)
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{as_option(name)} {path!r}: {missing(path)}")
    for name, other, use in (("validation_data", "data", "early stopping would pick the model on reviews it "
                                                          "trained on"),
                             ("test_data", "data", "the test score would be a training score"),
                             ("test_data", "validation_data", "the test score would have chosen the checkpoint")):
        path, taken = getattr(config, name), getattr(config, other)   # accepted without a word, a copy too
        if path and taken and os.path.isfile(taken) and filecmp.cmp(path, taken, shallow=False):
            same = "the" if os.path.samefile(path, taken) else "a copy of the"
            raise ConfigError(f"{as_option(name)} {path!r} is {same} {as_option(other)} file: {use}; give reviews "
                              f"kept out of {'training' if other == 'data' else 'training and validation'}, or leave "
                              f"it out (a share of --data is held out then)")
    if config.validation_data and config.validation != TrainConfig.validation:   # it was ignored
        raise ConfigError(f"--validation {config.validation} holds out a share of --data for validation, "
                          f"--validation-data gives the validation reviews: give one of them")


def _check_columns(config):
    """--text-column, --label-column and --label-names: given only for tables of one's own, and naming a column."""
    tables = config.data not in ("synthetic", "imdb") or config.validation_data or config.test_data
    if not tables and (ignored := [name for name in ("text_column", "label_column", "label_names")
                                   if getattr(config, name) != getattr(TrainConfig, name)]):   # ignored too
        raise ConfigError(f"{as_option(ignored[0])} {getattr(config, ignored[0])!r}: it is for tables of your own "
                          f"(--data FILE, --validation-data, --test-data); --data {config.data} has its own texts "
                          f"and labels")
    for name in ("text_column", "label_column"):   # '' was "minidl train: None (tried text columns [] ...)"
        if tables and not split_commas(getattr(config, name)):
            raise ConfigError(f"{as_option(name)} {getattr(config, name)!r} names no column; give the column's name "
                              f"(default {getattr(TrainConfig, name)!r})")


def _check_teacher(config):
    if not config.teacher:
        if config.unlabelled:
            raise ConfigError(f"--unlabelled {config.unlabelled}: the unlabelled reviews are labelled by the "
                              f"teacher; give --teacher CHECKPOINT (best.npz of a minidl train run)")
        if ignored := [f"{as_option(name)} {getattr(config, name)}" for name in ("distill_alpha", "temperature")
                       if getattr(config, name) != getattr(TrainConfig, name)]:   # they changed nothing, silently
            raise ConfigError(f"{' and '.join(ignored)}: distillation settings, with no --teacher to learn from; "
                              f"give --teacher CHECKPOINT (best.npz of a minidl train run), or leave them out")
        return
    from .teacher import teacher_paths

    teacher_paths(config.teacher)          # each a classifier checkpoint
    if not isinstance(config.distill_alpha, (int, float)) or not 0.0 <= config.distill_alpha <= 1.0:
        raise ConfigError(f"--distill-alpha is the share of the label term and must lie in [0, 1], "
                          f"got {config.distill_alpha!r}")
    if not isinstance(config.temperature, (int, float)) or not 0 < config.temperature <= 1e6:   # inf, 1e200: T²
        raise ConfigError(f"--temperature must be > 0 and at most 1e6 (1: the plain softmax; the course uses 2), "
                          f"got {config.temperature!r}")
    if config.train_windows:
        raise ConfigError("--teacher with --train-windows: the teacher scores whole reviews, not windows; "
                          "give one of them")
    if config.unlabelled and config.data != "imdb":
        raise ConfigError(f"--unlabelled {config.unlabelled}: unlabelled reviews come with --data imdb only "
                          f"(its train/unsup), not with --data {config.data}")
    if config.unlabelled > UNLABELLED_SIZE:
        raise ConfigError(f"--unlabelled {config.unlabelled}: IMDB has {UNLABELLED_SIZE:,} unlabelled reviews; "
                          f"give at most {UNLABELLED_SIZE}")

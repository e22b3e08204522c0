"""``TrainConfig``: everything that defines one training run, JSON-able so a checkpoint
or a sweep's results file records exactly how a number was made."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    # the model (see minidl.models.MODELS)
    model: str = "gru"
    hidden: object = 64                 # int, or a list of layer sizes for the MLP scorers
    embed_dim: int = 50
    model_options: dict = field(default_factory=dict)  # e.g. {"radius": 5}, {"nonlinearity": "tanh"}
    dropout: float = 0.0
    embeddings: str = None              # a GloVe-format file; None: learned embeddings
    freeze_embeddings: bool = False
    # the data
    data: str = "synthetic"             # "synthetic", "imdb", or a CSV/TSV/JSONL file
    data_path: str = None               # where the IMDB data lives (default: $MINIDL_DATA, ~/.cache/minidl)
    text_column: str = "text"           # for your own tables
    label_column: str = "label"
    max_length: int = 100               # keep the first words of each review (the course: 100)
    max_vocab: int = 20000
    min_freq: int = 2
    validation: float = 0.1             # fraction of train held out for early stopping
    train_limit: int = None             # use only the first N training reviews (quick runs)
    # optimisation
    batch_size: int = 32
    epochs: int = 5
    optimizer: str = "adam"             # "adam" or "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
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
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known ones: {sorted(known)}")
        return cls(**values)

    def model_config(self):
        """Keyword arguments for ``minidl.models.build_model`` (besides the vocabulary size)."""
        return {"hidden": self.hidden, "embed_dim": self.embed_dim, "dropout": self.dropout, **self.model_options}

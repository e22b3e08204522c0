"""``TextDataset``: texts with integer labels and the names of those labels.

Every loader (IMDB, your own CSV/TSV/JSONL, the built-in synthetic corpus) returns one,
so every model trains on any of them. Labels are ints in ``range(len(label_names))``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TextDataset:
    texts: list            # N strings
    labels: np.ndarray     # (N,) int64, each in range(len(label_names))
    label_names: list      # e.g. ["neg", "pos"]
    name: str = "dataset"
    info: dict = field(default_factory=dict)  # loader-specific extras (e.g. per-review metadata)

    def __post_init__(self):
        raw = np.asarray(self.labels).reshape(-1)
        if raw.size and not (raw.dtype.kind in "iub" or raw.dtype.kind == "f" and np.all(raw == np.round(raw))):
            raise ValueError(f"{self.name}: labels are class indices 0..{len(self.label_names) - 1} (ints), got "
                             f"{raw[:3].tolist()}...; map each label to its index in label_names "
                             f"{list(self.label_names)}")
        self.labels = raw.astype(np.int64)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            bad = self.labels[(self.labels < 0) | (self.labels >= len(self.label_names))][0]
            raise ValueError(f"{self.name}: label {int(bad)} is outside the label set "
                             f"{list(self.label_names)} (labels are indices 0..{len(self.label_names) - 1})")

    def __len__(self):
        return len(self.texts)

    @property
    def num_classes(self):
        return len(self.label_names)

    def class_counts(self):
        """{label name: count}."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.label_names, counts)}

    def subset(self, indices, name=None):
        """The reviews at ``indices`` (an int array), in that order; per-item ``info`` lists follow."""
        indices = np.asarray(indices, dtype=np.int64)
        info = {k: [v[i] for i in indices] if isinstance(v, list) and len(v) == len(self) else v
                for k, v in self.info.items()}
        return TextDataset([self.texts[i] for i in indices], self.labels[indices], list(self.label_names),
                           name or self.name, info)

    def split(self, fraction, seed=0, names=("train", "validation")):
        """Two datasets: a seeded random ``fraction`` goes to the second (e.g. validation)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        cut = len(self) - int(round(fraction * len(self)))
        return (self.subset(np.sort(order[:cut]), f"{self.name}/{names[0]}"),
                self.subset(np.sort(order[cut:]), f"{self.name}/{names[1]}"))

    def __repr__(self):
        return f"TextDataset({self.name!r}, {len(self)} texts, classes {self.class_counts()})"

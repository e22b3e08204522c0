"""Class balancing by resampling (from the headline-classification project).

    oversample(ds)          every class repeated up to the largest class's size
    undersample(ds)         every class cut down to the smallest class's size
    rebalance(ds, 1000)     exactly 1000 per class: big classes cut, small ones repeated

Oversampling keeps every original example and adds copies drawn with replacement;
undersampling keeps a random subset without replacement. Both are seeded (the same seed gives
the same dataset) and keep the dataset's order (copies sit next to their original), so shuffle
when batching. Resample only the training split: a balanced test set would misreport accuracy
on the real class mix. A class with no examples cannot be oversampled; it stays empty and a
``DataWarning`` names it.
"""
from __future__ import annotations

import warnings

import numpy as np

from .errors import DataWarning


def oversample(dataset, target=None, seed=0):
    """Classes smaller than ``target`` (default: the largest class) grow to ``target`` examples."""
    target = _counts(dataset).max() if target is None else _check_target(target, "oversample")
    return _resample(dataset, target, seed, grow=True, shrink=False, suffix="oversampled")


def undersample(dataset, target=None, seed=0):
    """Classes larger than ``target`` (default: the smallest non-empty class) shrink to ``target``."""
    counts = _counts(dataset)
    target = min(counts[counts > 0], default=0) if target is None else _check_target(target, "undersample")
    return _resample(dataset, target, seed, grow=False, shrink=True, suffix="undersampled")


def rebalance(dataset, target, seed=0):
    """Exactly ``target`` examples of every (non-empty) class."""
    return _resample(dataset, _check_target(target, "rebalance"), seed, grow=True, shrink=True, suffix="rebalanced")


def _counts(dataset):
    return np.bincount(dataset.labels, minlength=dataset.num_classes)


def _check_target(target, who):
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target < 1:
        raise ValueError(f"{who}: target must be a positive int (examples per class), got {target!r}")
    return int(target)


def _resample(dataset, target, seed, grow, shrink, suffix):
    rng = np.random.default_rng(seed)
    keep, empty = [], []
    for label in range(dataset.num_classes):  # in label order, so the draws depend on the seed only
        members = np.flatnonzero(dataset.labels == label)
        if len(members) == 0:
            empty.append(dataset.label_names[label])
        elif len(members) > target and shrink:
            keep.append(rng.choice(members, size=target, replace=False))
        elif len(members) < target and grow:
            keep.append(np.concatenate([members, rng.choice(members, size=target - len(members), replace=True)]))
        else:
            keep.append(members)
    if empty and grow:
        warnings.warn(f"{dataset.name}: class(es) {empty} have no examples to copy; they stay empty",
                      DataWarning, stacklevel=3)
    indices = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    return dataset.subset(indices, f"{dataset.name}/{suffix}")

"""Tiny 2-D classification problems for checking that a model and an optimizer can learn:
XOR (not linearly separable) and two interleaved spirals (needs a curved boundary)."""
from __future__ import annotations

import numpy as np


def xor():
    """The four XOR points. X: (4, 2) float64 in {0, 1}; y: (4,) int64, 1 where x1 != x2."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y


def two_spirals(n_per_class=100, noise=0.0, seed=0, turns=1.5):
    """Two interleaved spirals, one per class, centred at the origin.

    Point i of class c lies at radius r = (i + 1) / n_per_class (in (0, 1]) and angle
    2π·turns·r + c·π, plus Gaussian noise of std ``noise`` on each coordinate
    (seeded, so the same arguments give the same points).

    Returns X: (N, 2) float64 and y: (N,) int64 in {0, 1}, N = 2·n_per_class, the
    classes alternating in blocks (class 0 first).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    radius = np.arange(1, n_per_class + 1) / n_per_class
    points = []
    for c in (0, 1):
        angle = 2.0 * np.pi * turns * radius + c * np.pi
        xy = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        points.append(xy + noise * rng.standard_normal(xy.shape))
    return np.concatenate(points), np.repeat(np.arange(2, dtype=np.int64), n_per_class)

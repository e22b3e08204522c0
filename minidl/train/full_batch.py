"""A classifier trained on one batch that holds all its examples (small tabular problems: the
spirals demo, logistic regression on averaged word vectors), through the training core."""
from __future__ import annotations

import minidl as md
from minidl import optim

from .loop import LossCurve, train


def train_full_batch(model, features, labels, steps, lr, device="cpu"):
    """Adam on cross-entropy, every step over all of ``features`` (N, D) and ``labels`` (N,);
    -> the LossCurve, one loss per step (each epoch is the one batch, so epoch = step)."""
    x, y = md.tensor(features, device=device), md.tensor(labels, device=device)
    losses = LossCurve()
    train(model, lambda epoch: [(x, y)], lambda model, batch: md.cross_entropy(model(batch[0]), batch[1]),
          optim.Adam(model.parameters(), lr=lr), epochs=steps, callbacks=[losses], log=None)
    return losses


def accuracy(model, features, labels, device="cpu"):
    """The fraction of ``features`` (N, D) whose highest logit is their label (N,)."""
    with md.no_grad():
        predicted = model(md.tensor(features, device=device)).numpy().argmax(axis=1)
    return float((predicted == labels).mean())

"""Acceptance: a small MLP built from minidl layers fits XOR and two spirals to 100% training
accuracy with each optimizer. Seeded and full-batch, so every run is the same; each takes
well under a second on the NumPy backend."""
import numpy as np
import pytest

import minidl as md
from minidl import nn, optim
from minidl.datasets import two_spirals, xor

OPTIMIZERS = {
    "sgd_momentum": lambda params: optim.SGD(params, lr=0.3, momentum=0.9),
    "adam": lambda params: optim.Adam(params, lr=0.02),
    "adamw": lambda params: optim.AdamW(params, lr=0.02, weight_decay=1e-2),
}


def train(X, y, make_optimizer, hidden, steps, seed=0):
    """x (N, 2) -> Linear -> tanh -> Linear -> tanh -> Linear -> logits (N, 2); returns
    the training accuracy and the final loss."""
    md.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                          nn.Linear(hidden, 2))
    opt = make_optimizer(model.parameters())
    x, targets = md.tensor(X), md.tensor(y)
    for _ in range(steps):
        loss = md.cross_entropy(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with md.no_grad():
        predicted = model(x).numpy().argmax(axis=1)
    return float((predicted == y).mean()), loss.item()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_xor(name):
    accuracy, loss = train(*xor(), OPTIMIZERS[name], hidden=4, steps=300)
    assert accuracy == 1.0 and loss < 0.05


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_two_spirals(name):
    X, y = two_spirals(100, noise=0.02, seed=0)
    accuracy, loss = train(X, y, OPTIMIZERS[name], hidden=16, steps=1500)
    assert accuracy == 1.0 and loss < 0.05


def test_training_is_deterministic():
    X, y = two_spirals(30, noise=0.02, seed=0)
    assert train(X, y, OPTIMIZERS["adam"], 8, 50) == train(X, y, OPTIMIZERS["adam"], 8, 50)


def test_binary_head_on_xor():
    """The same task with one logit per point and binary_cross_entropy_with_logits."""
    X, y = xor()
    md.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = optim.Adam(model.parameters(), lr=0.05)
    x, targets = md.tensor(X), md.tensor(y[:, None].astype(np.float32))
    for _ in range(300):
        loss = md.binary_cross_entropy_with_logits(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with md.no_grad():
        assert np.array_equal(model(x).numpy()[:, 0] > 0, y == 1)

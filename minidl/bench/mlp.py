"""Training-step throughput of a 2-layer MLP: minidl (NumPy backend) against PyTorch eager.

The step is the whole of one SGD-with-momentum update on a batch of B = 256 inputs of
784 features: ``x (B, 784) -> Linear -> ReLU -> Linear -> logits (B, 10)``, softmax
cross-entropy, backward, parameter update. The same step is also written by hand in
plain NumPy (no engine) so the engine's own overhead can be read off. All three run
in the same process, interleaved round by round, on the same data and weights.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

import minidl as md
from minidl import nn, optim

from .timing import time_interleaved, training_step


def _minidl_step(batch, sizes, lr, momentum, seed, device):
    md.manual_seed(seed)
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1], device=device), nn.ReLU(),
                          nn.Linear(sizes[1], sizes[2], device=device))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    x, y = md.tensor(batch[0], device=device), md.tensor(batch[1], device=device)
    return training_step(opt, lambda: md.cross_entropy(model(x), y)), model


def _weights(model):
    """The minidl model's parameters as NumPy arrays: W1 (784, 256), b1, W2 (256, 10), b2."""
    return [p.numpy() for p in model.parameters()]


def _torch_step(batch, model, lr, momentum):
    layers = [m for m in model.children() if isinstance(m, nn.Linear)]
    net = torch.nn.Sequential(torch.nn.Linear(*layers[0].weight.shape), torch.nn.ReLU(),
                              torch.nn.Linear(*layers[1].weight.shape))
    with torch.no_grad():  # same starting weights (torch stores W transposed: (out, in))
        for ours, theirs in zip(layers, (net[0], net[2])):
            theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().T.copy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.numpy().copy()))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    x, y = torch.from_numpy(batch[0]), torch.from_numpy(batch[1])
    step = training_step(opt, lambda: torch.nn.functional.cross_entropy(net(x), y))
    step.weights = lambda: [net[0].weight.detach().numpy().T, net[0].bias.detach().numpy(),
                            net[2].weight.detach().numpy().T, net[2].bias.detach().numpy()]
    return step


def _numpy_step(batch, model, lr, momentum):
    """The same step with every gradient written out by hand in NumPy, no graph."""
    x, y = batch
    W1, b1, W2, b2 = (p.numpy().copy() for p in model.parameters())
    params = [W1, b1, W2, b2]
    velocity = [np.zeros_like(p) for p in params]
    rows = np.arange(len(y))

    def step():
        h = x @ W1 + b1
        a = np.maximum(h, 0)
        z = a @ W2 + b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[rows, y] -= 1
        g = p / len(y)
        g_a = (g @ W2.T) * (h > 0)
        grads = [x.T @ g_a, g_a.sum(0), a.T @ g, g.sum(0)]
        for param, v, grad in zip(params, velocity, grads):
            v *= momentum
            v += grad
            param -= lr * v
    step.weights = lambda: params
    return step


def run(batch_size=256, sizes=(784, 256, 10), rounds=7, steps=30, seed=0, device="cpu", log=None):
    """Time the three steps; returns {name: seconds per step (median over rounds)}; ``log``: a
    progress line per round."""
    rng = np.random.default_rng(seed)
    batch = (rng.standard_normal((batch_size, sizes[0])).astype(np.float32),
             rng.integers(0, sizes[2], batch_size))
    minidl_step, model = _minidl_step(batch, sizes, 0.01, 0.9, seed, device)
    steps_by_name = {"minidl": minidl_step,
                     "pytorch": _torch_step(batch, model, 0.01, 0.9),
                     "numpy by hand": _numpy_step(batch, model, 0.01, 0.9)}
    return time_interleaved(steps_by_name, rounds, steps, warm_up=5, log=log, label="bench mlp")


def report(times):
    torch_time = times["pytorch"]
    rows = [f"{name:<16}{t * 1e3:>10.3f}{1 / t:>10.0f}{torch_time / t:>23.2f}x" for name, t in times.items()]
    return "\n".join([f"{'implementation':<16}{'ms/step':>10}{'steps/s':>10}{'throughput vs PyTorch':>24}", *rows])


def main(args=None):
    device = getattr(args, "device", "cpu")
    times = run(device=device, log=lambda line: print(line, file=sys.stderr, flush=True))   # ~10 s: as gru
    print(f"2-layer MLP training step, batch 256, 784->256->10, SGD momentum 0.9, float32; "
          f"threads: torch {torch.get_num_threads()}")
    print(report(times))
    side = "NumPy" if device == "cpu" else device
    print(f"minidl ({side}) / PyTorch eager throughput ratio: {times['pytorch'] / times['minidl']:.2f} (goal >= 1.0)")

"""Training-step throughput of a GRU classifier: minidl's fused course GRU (NumPy backend)
against ``torch.nn.GRU`` (PyTorch eager on the CPU), measured in the same run.

One step: x (B, T, E) -> GRU -> state at the last word -> Linear(H, 2) -> cross-entropy,
backward, Adam update; B = 32, T = 100, E = 100, H = 64 by default. Also timed: the same
course GRU written as a Python loop of torch ops with torch autograd (what a student
would write), to show what fusing buys. ``torch.nn.GRU`` uses the standard equations
(r applied after the matrix product); the work per step is the same.
"""
from __future__ import annotations

import time

import numpy as np

import minidl as md
from minidl import nn, optim


def _minidl_step(x, y, hidden, device="cpu"):
    md.manual_seed(0)
    gru = nn.GRU(x.shape[2], hidden, device=device)
    head = nn.Linear(hidden, 2, device=device)
    params = list(gru.parameters()) + list(head.parameters())
    opt = optim.Adam(params, lr=1e-3)
    xs, ys = md.tensor(x, device=device), md.tensor(y, device=device)

    def step():
        hs = gru(xs)
        loss = md.cross_entropy(head(hs[:, -1]), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _torch_step(x, y, hidden):
    import torch

    torch.manual_seed(0)
    gru = torch.nn.GRU(x.shape[2], hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 2)
    opt = torch.optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=1e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        hs, _ = gru(xs)
        loss = torch.nn.functional.cross_entropy(head(hs[:, -1]), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _torch_loop_step(x, y, hidden):
    """The course equations as a per-step loop of torch ops (torch autograd builds the graph)."""
    import torch

    torch.manual_seed(0)
    E, H = x.shape[2], hidden
    W_x = (torch.rand(E, 3 * H) * 2 - 1) / H ** 0.5
    U_zr = (torch.rand(H, 2 * H) * 2 - 1) / H ** 0.5
    U_h = (torch.rand(H, H) * 2 - 1) / H ** 0.5
    b = torch.zeros(3 * H)
    head = torch.nn.Linear(H, 2)
    params = [W_x.requires_grad_(), U_zr.requires_grad_(), U_h.requires_grad_(), b.requires_grad_()]
    opt = torch.optim.Adam(params + list(head.parameters()), lr=1e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        x_proj = xs @ W_x + b
        h = torch.zeros(xs.shape[0], H)
        for t in range(xs.shape[1]):
            zr = torch.sigmoid(x_proj[:, t, :2 * H] + h @ U_zr)
            z, r = zr[:, :H], zr[:, H:]
            h_tilde = torch.tanh(x_proj[:, t, 2 * H:] + (r * h) @ U_h)
            h = (1 - z) * h + z * h_tilde
        loss = torch.nn.functional.cross_entropy(head(h), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def run(batch=32, steps_in_time=100, embed=100, hidden=64, rounds=5, repeats=5, seed=0):
    """{name: seconds per training step}, median over interleaved rounds."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps_in_time, embed)).astype(np.float32)
    y = rng.integers(0, 2, batch)
    contenders = {"minidl (NumPy)": _minidl_step(x, y, hidden), "torch.nn.GRU": _torch_step(x, y, hidden),
                  "torch loop (course eqs)": _torch_loop_step(x, y, hidden)}
    for step in contenders.values():
        step()
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, step in contenders.items():
            time.sleep(0.2)  # let the previous contender's worker threads go idle
            step()
            start = time.perf_counter()
            for _ in range(repeats):
                step()
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(args=None):
    import torch

    shape = dict(batch=32, steps_in_time=100, embed=100, hidden=64)
    times = run(**shape)
    print(f"GRU classifier training step, B={shape['batch']}, T={shape['steps_in_time']}, E={shape['embed']}, "
          f"H={shape['hidden']}, float32, Adam; torch threads: {torch.get_num_threads()}")
    reference = times["torch.nn.GRU"]
    print(f"{'implementation':<26}{'ms/step':>10}{'throughput vs torch.nn.GRU':>30}")
    for name, t in times.items():
        print(f"{name:<26}{t * 1e3:>10.2f}{reference / t:>29.2f}x")
    return times

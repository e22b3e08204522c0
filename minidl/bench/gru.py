"""Training-step throughput of a GRU classifier: minidl's fused course GRU (NumPy backend)
against ``torch.nn.GRU`` (PyTorch eager on the CPU), measured in the same run.

One step: x (B, T, E) -> GRU -> state at the last word -> Linear(H, 2) -> cross-entropy,
backward, Adam update; B = 32, T = 100, E = 100, H = 64 by default. Also timed: the same
course GRU written as a Python loop of torch ops with torch autograd (what a student
would write), to show what fusing buys. ``torch.nn.GRU`` uses the standard equations
(r applied after the matrix product); the work per step is the same.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

import minidl as md
from minidl import nn, optim
from minidl.errors import MinidlError

from ..data.batching import batches
from ..data.imdb import find_imdb
from ..models import GRUClassifier
from ..train import TrainConfig
from ..train.prepare import prepare
from .timing import time_interleaved, training_step


def _minidl_step(x, y, hidden, device="cpu"):
    md.manual_seed(0)
    gru = nn.GRU(x.shape[2], hidden, device=device)
    head = nn.Linear(hidden, 2, device=device)
    opt = optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=1e-3)
    xs, ys = md.tensor(x, device=device), md.tensor(y, device=device)
    return training_step(opt, lambda: md.cross_entropy(head(gru(xs)[:, -1]), ys))


def _torch_step(x, y, hidden):
    torch.manual_seed(0)
    gru = torch.nn.GRU(x.shape[2], hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 2)
    opt = torch.optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=1e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    return training_step(opt, lambda: torch.nn.functional.cross_entropy(head(gru(xs)[0][:, -1]), ys))


def _torch_loop_step(x, y, hidden):
    """The course equations as a per-step loop of torch ops (torch autograd builds the graph)."""
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

    def loss():
        x_proj = xs @ W_x + b
        h = torch.zeros(xs.shape[0], H)
        for t in range(xs.shape[1]):
            zr = torch.sigmoid(x_proj[:, t, :2 * H] + h @ U_zr)
            z, r = zr[:, :H], zr[:, H:]
            h_tilde = torch.tanh(x_proj[:, t, 2 * H:] + (r * h) @ U_h)
            h = (1 - z) * h + z * h_tilde
        return torch.nn.functional.cross_entropy(head(h), ys)
    return training_step(opt, loss)


def run(batch=32, steps_in_time=100, embed=100, hidden=64, rounds=5, repeats=5, seed=0, log=None):
    """{name: seconds per training step}, median over interleaved rounds; ``log``: a
    function for one progress line per round (None: silent)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps_in_time, embed)).astype(np.float32)
    y = rng.integers(0, 2, batch)
    contenders = {"minidl (NumPy)": _minidl_step(x, y, hidden), "torch.nn.GRU": _torch_step(x, y, hidden),
                  "torch loop (course eqs)": _torch_loop_step(x, y, hidden)}
    return time_interleaved(contenders, rounds, repeats, log=log, label="bench gru")


def main(args=None):
    if getattr(args, "data", None) and not getattr(args, "imdb_epoch", False):
        raise MinidlError("--data is read only for --imdb-epoch; add --imdb-epoch, or leave --data out")
    if getattr(args, "imdb_epoch", False):   # the data is looked for before the step benchmark, not after it
        find_imdb(getattr(args, "data", None))
    shape = dict(batch=32, steps_in_time=100, embed=100, hidden=64)
    times = run(**shape, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"GRU classifier training step, B={shape['batch']}, T={shape['steps_in_time']}, E={shape['embed']}, "
          f"H={shape['hidden']}, float32, Adam; torch threads: {torch.get_num_threads()}")
    reference = times["torch.nn.GRU"]
    print(f"{'implementation':<26}{'ms/step':>10}{'throughput vs torch.nn.GRU':>30}")
    for name, t in times.items():
        print(f"{name:<26}{t * 1e3:>10.2f}{reference / t:>29.2f}x")
    if getattr(args, "imdb_epoch", False):
        print("bench gru: one IMDB epoch each, minidl then torch.nn.GRU (about a minute each) ...", file=sys.stderr,
              flush=True)
        epoch = imdb_epoch(getattr(args, "data", None))
        print(f"one IMDB training epoch ({epoch['reviews']:,} reviews, first 100 words, E=100, H=64, batch 32, "
              f"bucketed): minidl {epoch['minidl']:.1f} s, torch.nn.GRU {epoch['torch']:.1f} s, "
              f"minidl / torch time = {epoch['minidl'] / epoch['torch']:.2f} (goal <= 1.2)")
    return times


def imdb_epoch(data_path=None, hidden=64, embed=100, max_length=100, batch_size=32):
    """Seconds for one training epoch over the 25,000 IMDB training reviews (first
    ``max_length`` words, bucketed batches of 32): minidl's GRUClassifier against the same
    model built from torch.nn.Embedding + torch.nn.GRU + Linear, on the same batches."""
    prepared = prepare(TrainConfig(data="imdb", data_path=data_path, max_length=max_length, validation=0.0))
    train, V = prepared.train, len(prepared.vocab)

    def seconds(opt, loss):   # one epoch of training steps, loss(batch), over the same batches
        start = time.perf_counter()
        for batch in batches(train, batch_size, seed=0, bucket=True):
            training_step(opt, lambda: loss(batch))()
        return time.perf_counter() - start

    md.manual_seed(0)
    model = GRUClassifier(V, hidden=hidden, embed_dim=embed)
    ours = seconds(optim.Adam(list(model.parameters()), lr=1e-3),
                   lambda batch: md.cross_entropy(model(batch.ids, batch.mask, batch.lengths).logits, batch.labels))

    torch.manual_seed(0)
    embedding = torch.nn.Embedding(V, embed, padding_idx=0)
    gru = torch.nn.GRU(embed, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 2)

    def torch_loss(batch):
        ids, lengths = torch.from_numpy(batch.ids.numpy()), torch.from_numpy(batch.lengths.numpy())
        hs, _ = gru(embedding(ids))
        last = hs[torch.arange(len(lengths)), lengths - 1]
        return torch.nn.functional.cross_entropy(head(last), torch.from_numpy(batch.labels.numpy()))
    theirs = seconds(torch.optim.Adam(list(embedding.parameters()) + list(gru.parameters()) + list(head.parameters()),
                                      lr=1e-3), torch_loss)
    return {"minidl": ours, "torch": theirs, "reviews": len(train)}

"""What every benchmark shares: one training step as a function, and interleaved timing."""
from __future__ import annotations

import time

import numpy as np


def training_step(opt, loss):
    """A function that runs one training step: ``loss()``, backward, ``opt``'s update (minidl's or torch's)."""
    def step():
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
    return step


def time_interleaved(steps, rounds, repeats, warm_up=1, log=None, label="bench", pause=0.2, prime=True,
                     sync=lambda: None):
    """{name: median seconds per call of ``steps[name]()``} over ``rounds`` rounds of ``repeats``
    calls each, after ``warm_up`` calls of every step; ``log``: a function for one progress line
    per round (None: silent). Before each contender's timed calls: ``pause`` seconds of sleep,
    one untimed call if ``prime``; ``sync()`` (e.g. a GPU's synchronise) is called just before
    each clock reading."""
    times = {name: [] for name in steps}
    for step in steps.values():  # warm-up: allocator, BLAS threads
        for _ in range(warm_up):
            step()
    for round_ in range(rounds):  # interleaved, so a noisy moment hits every contender
        if log:
            log(f"{label}: round {round_ + 1}/{rounds} ...")
        for name, step in steps.items():
            # BLAS/OpenMP worker threads spin for a while after their last call; let the
            # previous contender's go idle so they do not steal cores from this one.
            time.sleep(pause)
            if prime:
                step()
            sync()
            start = time.perf_counter()
            for _ in range(repeats):
                step()
            sync()
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: float(np.median(t)) for name, t in times.items()}

"""``--threads N`` for every ``minidl bench``: the same number of threads for every contender.

minidl on NumPy spends its time in NumPy's BLAS (OpenBLAS; SciPy brings a second one for the
exact GELU's erf); minidl on torch and PyTorch itself spend it in torch's intra-op pool
(OpenMP). A ratio is only fair when both sides may use the same number of cores, so
``limit_threads(N)`` sets ``torch.set_num_threads(N)`` and threadpoolctl's
``threadpool_limits(N)`` (every BLAS and OpenMP pool loaded) for the duration of the run, and
restores both afterwards. ``N = None`` leaves the libraries' own choice; either way
``describe()`` says what is in force, so a printed table can state it.
"""
from __future__ import annotations

import contextlib
import os

from ..errors import MinidlError


def _load_thread_pools():
    """threadpoolctl reaches only libraries already loaded: load every one a bench uses first."""
    import scipy.special  # noqa: F401  (its own OpenBLAS, used by the NumPy backend's GELU)
    import torch  # noqa: F401


def thread_info():
    """{"torch": torch.get_num_threads(), "blas": [{"library", "threads", "path"}, ...]}: what is in force now."""
    import torch
    from threadpoolctl import threadpool_info

    _load_thread_pools()
    blas = [{"library": pool["internal_api"], "threads": pool["num_threads"], "path": pool["filepath"]}
            for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {"torch": torch.get_num_threads(), "blas": blas}


def usable_cpus():
    """The CPUs this process may run on (``taskset``, a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def describe(info=None):
    """One line, e.g. "torch 2; BLAS: openblas 2 (numpy.libs), openblas 2 (scipy.libs)"."""
    info = info or thread_info()
    pools = ", ".join(f"{pool['library']} {pool['threads']} ({os.path.basename(os.path.dirname(pool['path']))})"
                      for pool in info["blas"]) or "none loaded"
    return f"torch {info['torch']}; BLAS: {pools}"


@contextlib.contextmanager
def limit_threads(threads):
    """Inside: torch and every BLAS/OpenMP pool use ``threads`` threads (None: unchanged; below 1, or
    above the usable CPUs: a one-line MinidlError, as 100000 crashed torch and more than the CPUs
    made every bench ~10x slower)."""
    if threads is not None and not 1 <= threads <= usable_cpus():
        raise MinidlError(f"--threads must be a whole number from 1 to {usable_cpus()} (the CPUs this process may "
                          f"use), got {threads}")
    restore = set_threads(threads) if threads is not None else (lambda: None)
    try:
        yield
    finally:
        restore()


def set_threads(threads):
    """From now on torch and every BLAS/OpenMP pool use ``threads`` threads; returns a function
    that puts back what was in force before."""
    import torch
    from threadpoolctl import threadpool_limits

    _load_thread_pools()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    limits = threadpool_limits(limits=threads)

    def restore():
        limits.restore_original_limits()
        torch.set_num_threads(before)
    return restore

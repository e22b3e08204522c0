"""``minidl bench kernels``: the Triton kernels on a GPU against cuDNN, PyTorch and minidl's
own reference path, measured in the same run.

Every contender runs forward AND backward (what a training step needs), in float32, timed
with ``triton.testing.do_bench`` (median over repeated runs, the L2 cache flushed between):

* ``gru`` / ``rnn``: x (B, T, H) -> every state (B, T, H), input size E = H, backward to x
  and every weight. minidl's ``nn.GRU`` / ``nn.ElmanRNN`` (tanh) on the kernels and on the
  reference path, against ``torch.nn.GRU`` / ``torch.nn.RNN`` (cuDNN, PyTorch's defaults).
  Goal: speed-up over cuDNN ≥ 1 for H ≤ 128.
* ``attention``: q, k, v (B, T, d = H), radius r = 5: the window kernel and the reference
  against ``scaled_dot_product_attention`` with a dense (T, T) band mask, and the peak memory
  each needs. Goal: ≥ 3× at T = 400.
* ``mha``: the transformer's attention, q, k, v (B, h, T, d_head), h = 4 heads, causal or not,
  no padding: the FlashAttention-style kernel and the reference against PyTorch's
  ``scaled_dot_product_attention`` (its own FlashAttention kernel on recent GPUs), and the
  peak memory each needs. No goal: this is a course kernel against a tuned library one.
* ``losses``: logits (B·T, C) for C ∈ {2, 1024, 8192}: the cross-entropy kernel against
  ``F.cross_entropy``, the distillation kernel (α = 0.5, T = 2) against α·CE + (1 − α)·T²·KL
  from ``F.kl_div``; achieved GB/s (the bytes our forward + backward must move: logits and
  teacher read, gradient written, then read and written once more, scaled) against the
  device's peak. Goal: ≥ 1.5×.

Precision: float32 products follow ``torch.set_float32_matmul_precision``, set for the run by
``--precision`` (default "high": TF32 on tensor cores for our ``tl.dot`` and torch's own
products, as cuDNN's RNNs use by default; "highest": full float32 everywhere but in cuDNN,
which follows ``torch.backends.cudnn.allow_tf32``).

Sizes: B ∈ {32, 128}, T ∈ {100, 400}, H ∈ {32, 64, 128} (``mha``: B = 32, T ∈ {128, 512},
d_head ∈ {32, 64}). Without a GPU it says so and exits 0.
"""
from __future__ import annotations

import contextlib
import itertools

import torch
import torch.nn.functional as F

import minidl as md

from .. import kernels, nn
from ..autograd import ops
from ..errors import MinidlError
from ..compress import distillation_loss

BATCHES, TIMES, HIDDEN = (32, 128), (100, 400), (32, 64, 128)
RADIUS = 5
CLASSES = (2, 1024, 8192)
ALPHA, TEMPERATURE = 0.5, 2.0
HEADS, MHA_TIMES, HEAD_SIZES = 4, (128, 512), (32, 64)
FAMILIES = ("gru", "rnn", "attention", "mha", "losses")


def _step(forward, leaves, grad=None, mode=None):
    """forward() + backward(grad) on minidl's path ``mode`` (None: a torch contender's step), the
    gradients reset first (as zero_grad would); returns the leaves' gradients, so a test can check
    that the contenders agree."""
    def step():
        for leaf in leaves:
            leaf.grad = None
        with kernels.mode(mode) if mode else contextlib.nullcontext():
            forward().backward(grad)
        return [leaf.grad for leaf in leaves]
    return step


def _ours(forward, leaves, grad=None):
    """{"minidl+triton", "reference"}: ``_step`` of ``forward`` on each of minidl's two paths."""
    return {"minidl+triton": _step(forward, leaves, grad, "triton"),
            "reference": _step(forward, leaves, grad, "reference")}


def recurrent_contenders(kind, B, T, H, device="cuda"):
    """{name: one forward + backward} for ``kind`` "gru" or "rnn"."""
    md.manual_seed(0)
    layer = nn.GRU(H, H, device=device) if kind == "gru" else nn.ElmanRNN(H, H, "tanh", device=device)
    x = md.randn(B, T, H, device=device, requires_grad=True)
    grad = torch.randn(B, T, H, device=x.data.device)
    theirs = (torch.nn.GRU(H, H, batch_first=True) if kind == "gru" else
              torch.nn.RNN(H, H, nonlinearity="tanh", batch_first=True)).to(x.data.device)
    x_torch = x.data.clone().requires_grad_()
    return {**_ours(lambda: layer(x), [x, *layer.parameters()], grad),
            "cuDNN": _step(lambda: theirs(x_torch)[0], [x_torch, *theirs.parameters()], grad)}


def attention_contenders(B, T, d, device="cuda"):
    """{name: one forward + backward} of windowed attention, radius ``RADIUS``, no padding."""
    md.manual_seed(0)
    q, k, v = (md.randn(B, T, d, device=device, requires_grad=True) for _ in range(3))
    mask = md.ones(B, T, device=device)
    grad = torch.randn(B, T, d, device=q.data.device)
    positions = torch.arange(T, device=q.data.device)
    band = (positions[:, None] - positions[None, :]).abs() <= RADIUS               # (T, T): the dense mask
    q4, k4, v4 = (t.data[:, None].clone().requires_grad_() for t in (q, k, v))     # (B, 1, T, d)
    return {**_ours(lambda: ops.window_attention(q, k, v, mask, RADIUS)[0], [q, k, v], grad),
            "dense SDPA": _step(lambda: F.scaled_dot_product_attention(q4, k4, v4, attn_mask=band),
                                [q4, k4, v4], grad[:, None])}


def mha_contenders(B, T, d, causal, device="cuda"):
    """{name: one forward + backward} of the transformer's attention, ``HEADS`` heads, no padding."""
    md.manual_seed(0)
    q, k, v = (md.randn(B, HEADS, T, d, device=device, requires_grad=True) for _ in range(3))
    grad = torch.randn(B, HEADS, T, d, device=q.data.device)
    q_t, k_t, v_t = (t.data.clone().requires_grad_() for t in (q, k, v))
    return {**_ours(lambda: ops.scaled_dot_product_attention(q, k, v, None, causal), [q, k, v], grad),
            "torch SDPA": _step(lambda: F.scaled_dot_product_attention(q_t, k_t, v_t, is_causal=causal),
                                [q_t, k_t, v_t], grad)}


def loss_contenders(loss, N, C, device="cuda"):
    """{name: one forward + backward} of ``loss`` "cross_entropy" or "distillation" on (N, C) logits."""
    md.manual_seed(0)
    logits = md.randn(N, C, device=device, requires_grad=True)
    teacher = md.randn(N, C, device=device)
    targets = md.tensor(torch.randint(0, C, (N,), device=logits.data.device))
    logits_torch, teacher_torch, targets_torch = logits.data.clone().requires_grad_(), teacher.data, targets.data
    if loss == "cross_entropy":
        return {**_ours(lambda: md.cross_entropy(logits, targets), [logits]),
                "pytorch": _step(lambda: F.cross_entropy(logits_torch, targets_torch), [logits_torch])}

    def theirs():
        soft = F.kl_div(F.log_softmax(logits_torch / TEMPERATURE, -1),
                        F.log_softmax(teacher_torch / TEMPERATURE, -1),
                        reduction="batchmean", log_target=True)
        return ALPHA * F.cross_entropy(logits_torch, targets_torch) + (1 - ALPHA) * TEMPERATURE ** 2 * soft
    return {**_ours(lambda: distillation_loss(logits, teacher, targets, ALPHA, TEMPERATURE), [logits]),
            "pytorch": _step(theirs, [logits_torch])}


def _time(contenders):
    from triton.testing import do_bench

    return {name: do_bench(step, return_mode="median") for name, step in contenders.items()}


def _peak_memory(step):
    """Bytes allocated at the peak of one run of ``step``, above what was allocated before."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def _peak_mib(contenders, names):
    """The table cells of the named contenders' peak memory, in MiB."""
    return "".join(f"{_peak_memory(contenders[name]) / 2 ** 20:>11.1f}" for name in names)


def _row(sizes, times, baseline, extra=""):
    columns = "".join(f"{t:>18.3f}" for t in times.values())
    return f"{sizes}{columns}{times[baseline] / times['minidl+triton']:>11.2f}x{extra}"


def _header(title, sizes, baseline, extra=""):
    print(f"\n{title}")
    columns = "".join(f"{name + ' ms':>18}" for name in ("minidl+triton", "reference", baseline))
    print(f"{sizes}{columns}{'speed-up':>12}{extra}")


def bench_recurrent(kind):
    _header(f"{kind.upper()} forward + backward, float32; speed-up = cuDNN time / minidl+triton time (goal ≥ 1)",
            f"{'B':>5}{'T':>5}{'H':>5}", "cuDNN")
    for B, T, H in itertools.product(BATCHES, TIMES, HIDDEN):
        print(_row(f"{B:>5}{T:>5}{H:>5}", _time(recurrent_contenders(kind, B, T, H)), "cuDNN"), flush=True)


def bench_attention():
    _header(f"windowed attention r={RADIUS} forward + backward, float32; speed-up = dense SDPA time / "
            f"minidl+triton time (goal ≥ 3 at T=400); peak memory in MiB", f"{'B':>5}{'T':>5}{'d':>5}", "dense SDPA",
            f"{'ours MiB':>11}{'dense MiB':>11}")
    for B, T, d in itertools.product(BATCHES, TIMES, HIDDEN):
        contenders = attention_contenders(B, T, d)
        memory = _peak_mib(contenders, ("minidl+triton", "dense SDPA"))
        print(_row(f"{B:>5}{T:>5}{d:>5}", _time(contenders), "dense SDPA", memory), flush=True)


def bench_mha():
    _header(f"transformer attention, {HEADS} heads, forward + backward, float32; speed-up = torch SDPA time / "
            "minidl+triton time; peak memory in MiB", f"{'B':>5}{'T':>5}{'d':>5}{'causal':>7}", "torch SDPA",
            f"{'ours MiB':>11}{'ref MiB':>11}")
    for T, d, causal in itertools.product(MHA_TIMES, HEAD_SIZES, (False, True)):
        contenders = mha_contenders(BATCHES[0], T, d, causal)
        memory = _peak_mib(contenders, ("minidl+triton", "reference"))
        print(_row(f"{BATCHES[0]:>5}{T:>5}{d:>5}{'yes' if causal else 'no':>7}", _time(contenders), "torch SDPA",
                   memory), flush=True)


def bench_losses():
    from triton.testing import get_dram_gbps

    peak = get_dram_gbps()
    for loss, passes in (("cross_entropy", 4), ("distillation", 5)):
        _header(f"{loss} forward + backward on (B·T, C) logits, float32; speed-up = PyTorch time / minidl+triton "
                f"time (goal ≥ 1.5); GB/s of minidl+triton against the peak {peak:.0f} GB/s",
                f"{'B':>5}{'T':>5}{'C':>6}", "pytorch", f"{'GB/s':>9}{'of peak':>9}")
        for B, T, C in itertools.product(BATCHES, TIMES, CLASSES):
            times = _time(loss_contenders(loss, B * T, C))
            gb_per_s = passes * B * T * C * 4 / (times["minidl+triton"] * 1e-3) / 1e9
            print(_row(f"{B:>5}{T:>5}{C:>6}", times, "pytorch", f"{gb_per_s:>9.0f}{gb_per_s / peak:>9.0%}"),
                  flush=True)


def main(args=None):
    families = getattr(args, "only", None) or FAMILIES
    if set(families) - set(FAMILIES):
        raise MinidlError(f"--only: choose from {', '.join(FAMILIES)}, got {', '.join(families)}")
    if not torch.cuda.is_available():
        print("minidl bench kernels: no CUDA GPU here (torch.cuda.is_available() is False), so there is nothing "
              "to time. The kernels' correctness is checked on the CPU by Triton's interpreter: "
              "pytest tests/kernels")
        return
    if not kernels.triton_available():
        raise MinidlError('it needs Triton: pip install "triton>=3.0" (or minidl[gpu])')
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(getattr(args, "precision", None) or "high")
    try:
        print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, cudnn {torch.backends.cudnn.version()}, "
              f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
              f"float32 matmul precision {torch.get_float32_matmul_precision()!r} (minidl's tl.dot and torch's "
              f"products in {'full float32' if torch.get_float32_matmul_precision() == 'highest' else 'TF32'})")
        for family in families:
            {"gru": lambda: bench_recurrent("gru"), "rnn": lambda: bench_recurrent("rnn"),
             "attention": bench_attention, "mha": bench_mha, "losses": bench_losses}[family]()
    finally:
        torch.set_float32_matmul_precision(before)

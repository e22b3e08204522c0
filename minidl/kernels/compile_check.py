"""Compile every Triton kernel for a real GPU target, without a GPU.

Without a GPU the tests run the kernels in Triton's CPU interpreter, which executes the
Python body with NumPy: it checks the maths but not what only the compiler sees. Here
``triton.compile`` takes each kernel through Triton's whole NVIDIA pipeline (TTIR, TTGIR,
LLVM IR, PTX) and the ``ptxas`` Triton bundles turns the PTX into a cubin for sm_90
(H100) or sm_80 (A100). That catches what the interpreter never checks: ``tl.dot``'s shape
and dtype rules, type errors in code generation, layouts that do not lower, and how much
of the chip a program takes:

    registers   per thread, and the bytes ptxas spills to local memory when they run out
    shared      bytes per block Triton asks for at launch, against the target's limit

Each kernel is compiled as its module's launcher would launch it: the block sizes and
options come from the module's own ``launch_config``, the arguments are specialised by
Triton's own rule (a pointer's dtype, an int equal to 1 becoming a constant, divisibility
by 16), for the sizes of ``minidl bench kernels``.

A kernel must fit every target's shared memory unless its ``Config.too_big_for`` says it
does not, and why: that is where the kernel modules' documented limits are recorded (today
one rule, in ``_recurrent_configs``: the GRU at H = 128 needs 192 KiB of weights, too many
for an A100). A kernel that does not fit where we claim it does, or does not compile,
fails the check; spills are reported, not failed.

Limits: nothing runs, so there is no timing and no result to compare; a kernel that compiles
can still be slow (spills are the first sign) or wrong on the hardware. Needs Triton's NVIDIA
backend and its bundled ptxas, and a process WITHOUT ``TRITON_INTERPRET``: under the
interpreter ``triton.jit`` makes functions that cannot be compiled.

    python -m minidl.kernels.compile_check [--arch 90 80] [--only gru,rnn,window_attention,attention,losses]
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import torch

from ..bench.kernels import BATCHES, CLASSES, HEADS, HIDDEN, MHA_TIMES, RADIUS, TIMES

# Largest shared memory one block may use (opt-in, cudaDevAttrMaxSharedMemoryPerBlockOptin), from
# the CUDA C++ Programming Guide's table of technical specifications per compute capability:
# 227 KiB on 9.0 (H100), 163 KiB on 8.0 (A100). Triton refuses a launch above it.
SHARED_MEMORY_LIMIT = {90: 227 * 1024, 80: 163 * 1024}

# The problem sizes of ``minidl bench kernels`` (its first batch and time, its longest mha
# sequence; HIDDEN, RADIUS, HEADS and CLASSES are its own)
BATCH, TIME, MHA_TIME = BATCHES[0], TIMES[0], MHA_TIMES[-1]
FLOAT64_HIDDEN = (32,)      # the float64 (gradient-check) path of the recurrent kernels
# (dtype name, the products' precision (matmul.py), the recurrent widths) of the kernels with tl.dot
PRECISIONS = (("float32", "ieee", HIDDEN), ("float32", "tf32", HIDDEN), ("float64", "float64", FLOAT64_HIDDEN))


@dataclass(frozen=True)
class Config:
    """One kernel launch to compile, as its module's launcher would make it.

    ``args``: every parameter of ``kernel`` in order: a ``triton.runtime.jit.MockTensor`` of
    the pointer's dtype, an int, or a constexpr's value. ``options``: num_warps, num_stages
    (absent: Triton's defaults, as at the launch). ``too_big_for``: {arch: why} for the targets
    whose shared memory we do NOT claim it fits."""
    name: str
    kernel: object
    args: tuple
    options: dict
    too_big_for: dict = field(default_factory=dict)


@dataclass
class Result:
    """What compiling one Config for one target gave; sizes in bytes, None where it failed."""
    name: str
    arch: int
    num_warps: int | None = None
    num_stages: int | None = None
    registers: int | None = None       # per thread
    spill_stores: int | None = None    # per thread, to local memory
    spill_loads: int | None = None
    shared: int | None = None          # per block, as Triton asks for it at launch
    shared_limit: int = 0
    expected_to_fit: bool = True
    why_not: str = ""                  # the documented reason, where not expected to fit
    error: str | None = None
    seconds: float = 0.0

    @property
    def fits(self):
        return self.shared is not None and self.shared <= self.shared_limit

    @property
    def ok(self):
        """Compiled, and fits wherever we claim it does."""
        return self.error is None and (self.fits or not self.expected_to_fit)


def _config(name, kernel, dtype, sizes, constexprs, options, too_big_for=None):
    """A Config whose arguments follow ``kernel``'s parameter names: a ``*_ptr`` is a tensor of
    ``dtype`` (``targets_ptr``: int64 class indices), a constexpr comes from ``constexprs``, and
    every other parameter is the problem size of that name in ``sizes``."""
    from triton.runtime.jit import MockTensor

    def argument(param):
        if param in constexprs:
            return constexprs[param]
        if param.endswith("_ptr"):
            return MockTensor(torch.int64 if param == "targets_ptr" else dtype)
        return sizes[param]

    return Config(name, kernel, tuple(argument(p) for p in kernel.arg_names), options, too_big_for or {})


def _dtype_name(dtype, dot=None):
    """"fp32", or with the precision of the products "fp32 ieee", "fp32 tf32"."""
    name = str(dtype).removeprefix("torch.").replace("float", "fp")
    return f"{name} {dot}" if dot in ("ieee", "tf32") else name


def _recurrent_configs(family):
    """``family`` "rnn": the Elman RNN's kernels (one H×H weight block, tanh and relu), "gru": the GRU's (three)."""
    from . import recurrent

    rnn = family == "rnn"
    blocks, forward, backward = ((1, recurrent.elman_rnn_forward_kernel, recurrent.elman_rnn_backward_kernel) if rnn
                                 else (3, recurrent.gru_forward_kernel, recurrent.gru_backward_kernel))
    configs = []
    for dtype_name, dot, widths in PRECISIONS:
        dtype = getattr(torch, dtype_name)
        for H in widths:
            _, constexprs, options = recurrent.launch_config(dtype, BATCH, H, dot)
            # recurrent.py's docstring: tl.dot keeps the weights in shared memory, blocks·BLOCK_H²·4 bytes
            weights = blocks * constexprs["BLOCK_H"] ** 2 * 4 if dot != "float64" else 0
            too_big_for = {arch: f"{weights // 1024} KiB of weights (recurrent.py) > {limit // 1024} KiB"
                           for arch, limit in SHARED_MEMORY_LIMIT.items() if weights > limit}
            for direction, kernel in (("forward", forward), ("backward", backward)):
                for nonlinearity in ("tanh", "relu") if rnn else ("",):
                    name = " ".join(filter(None, [f"{family}_{direction}", nonlinearity, f"H={H}",
                                                  _dtype_name(dtype, dot)]))
                    flags = dict(RELU=nonlinearity == "relu") if rnn else {}
                    configs.append(_config(name, kernel, dtype, dict(B=BATCH, T=TIME, H=H), {**constexprs, **flags},
                                           options, too_big_for=too_big_for))
    return configs


def window_attention_configs():
    from . import window_attention as wa

    kernels = {"forward": wa.window_attention_forward_kernel, "query_grad": wa.window_attention_query_grad_kernel,
               "key_grad": wa.window_attention_key_grad_kernel}
    configs = []
    for D in HIDDEN:
        _, constexprs, options = wa.launch_config(BATCH, TIME, D, RADIUS)
        for direction, kernel in kernels.items():
            configs.append(_config(f"window_attention_{direction} d={D} r={RADIUS} fp32", kernel, torch.float32,
                                   dict(T=TIME, D=D, r=RADIUS), constexprs, options))
    return configs


def attention_configs():
    """The transformer's attention at the ``mha`` sizes of the benchmark: 4 heads, T = 512,
    d_head 32 and 64, causal or not, no padding mask (as benchmarked) and one with it."""
    from . import attention

    kernels = {"forward": attention.attention_forward_kernel, "key_grad": attention.attention_key_grad_kernel,
               "query_grad": attention.attention_query_grad_kernel}
    configs = []
    for dtype_name, dot, _ in PRECISIONS:
        dtype = getattr(torch, dtype_name)
        for D, causal, mask in ((32, False, False), (64, False, False), (64, True, True)):
            _, constexprs, options = attention.launch_config(dtype, BATCH, HEADS, MHA_TIME, D, mask, causal, dot)
            flags = " causal" * causal + " masked" * mask
            for direction, kernel in kernels.items():
                configs.append(_config(f"attention_{direction} d={D}{flags} {_dtype_name(dtype, dot)}", kernel,
                                       dtype, dict(T=MHA_TIME, D=D, HEADS=HEADS), constexprs, options))
    return configs


def losses_configs():
    from . import losses

    N = BATCH * TIME  # every position's logits, one row each
    configs = []
    for C in CLASSES:
        _, constexprs, options = losses.launch_config(N, C)
        sizes = dict(N=N, C=C)
        configs.append(_config(f"cross_entropy C={C} fp32", losses.cross_entropy_kernel, torch.float32, sizes,
                               constexprs, options))
        for kind in ("kl", "mse"):
            configs.append(_config(f"distillation {kind} C={C} fp32", losses.distillation_kernel, torch.float32,
                                   sizes, {**constexprs, "KL": kind == "kl"}, options))
    return configs


# Kernel family -> its Configs. A new kernel module adds one function here.
CONFIGS = {"rnn": functools.partial(_recurrent_configs, "rnn"), "gru": functools.partial(_recurrent_configs, "gru"),
           "window_attention": window_attention_configs, "attention": attention_configs, "losses": losses_configs}


def missing_compiler():
    """Why this machine cannot compile for NVIDIA targets, or None if it can: needs Triton with
    its NVIDIA backend and the ptxas it bundles (checked without importing any kernel)."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas
    except ImportError as error:
        return f"Triton's NVIDIA backend cannot be imported ({error})"
    try:
        for arch in SHARED_MEMORY_LIMIT:
            get_ptxas(arch)
    except RuntimeError as error:  # knobs: "Cannot find ptxas"
        return f"Triton's NVIDIA backend has no ptxas ({error})"
    return None


def require_compiler():
    """Raise unless this process can compile: the NVIDIA backend, and no interpreter."""
    import triton

    from .dispatch import interpreting

    if triton.knobs.runtime.interpret or interpreting():
        raise RuntimeError(
            "minidl.kernels.compile_check compiles the kernels for a GPU target, which cannot be done under "
            f"Triton's interpreter: TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')!r} in this process (the "
            "test suite's conftest sets it), so triton.jit made interpreted functions. Run it in a process "
            "without it: env -u TRITON_INTERPRET python -m minidl.kernels.compile_check")
    if reason := missing_compiler():
        raise RuntimeError(f"minidl.kernels.compile_check: {reason}")


def _source(kernel, args, backend):
    """The ASTSource a launch with ``args`` compiles, as ``JITFunction.run`` makes it (Triton 3.9):

    signature   {parameter name: type}: "*fp32", "*i64", "i32", ..., or "constexpr"
    constexprs  {(parameter index,): value}: the constexpr parameters, and every int argument
                equal to 1 unless the parameter is in ``do_not_specialize`` (window attention's D)
    attrs       {(parameter index,): [["tt.divisibility", 16]]} for a pointer or int divisible
                by 16 (a MockTensor's address is 0: aligned, as a fresh torch allocation is),
                [] for the other specialised parameters and the constexprs
    """
    from triton._C.libtriton import native_specialize_impl
    from triton.compiler import ASTSource

    signature, constexprs, attrs = {}, {}, {}
    for param, value in zip(kernel.params, args):
        if param.is_constexpr:
            kind, attr = "constexpr", ""
        else:  # the function a launch calls: (type, "D" if divisible by 16 else ""), or (type, None) unspecialised
            kind, attr = native_specialize_impl(type(backend), value, param.is_const, not param.do_not_specialize,
                                                not param.do_not_specialize_on_alignment)
        signature[param.name] = kind
        if kind == "constexpr":
            constexprs[(param.num,)] = value
        if isinstance(attr, str):
            attrs[(param.num,)] = backend.parse_attr(attr)
    return ASTSource(kernel, signature, constexprs, attrs)


def _ptxas_usage(ptx, arch, enable_fp_fusion):
    """(registers, spill stores, spill loads) per thread from ``ptxas -v``, run with the default
    flags of Triton's ``make_cubin`` (which deletes its own log), so it describes the same cubin."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "kernel.ptx")
        with open(source, "w") as file:
            file.write(ptx)
        fmad = [] if enable_fp_fusion else ["--fmad=false"]
        log = subprocess.run([get_ptxas(arch).path, "-lineinfo", *fmad, "-v", "--regAllocOptLevel=2",
                              f"--gpu-name={sm_arch_from_capability(arch)}", source, "-o", source + ".o"],
                             capture_output=True, text=True, check=True).stderr
    registers = re.search(r"Used (\d+) registers", log)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return int(registers.group(1)), int(spills.group(1)), int(spills.group(2))


def compile_config(config, arch):
    """Compile ``config`` for sm_``arch``; never raises for a kernel that fails (see Result.error)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend

    target = GPUTarget("cuda", arch, 32)
    result = Result(config.name, arch, shared_limit=SHARED_MEMORY_LIMIT[arch],
                    expected_to_fit=arch not in config.too_big_for, why_not=config.too_big_for.get(arch, ""))
    start = time.perf_counter()
    try:
        compiled = triton.compile(_source(config.kernel, config.args, make_backend(target)), target=target,
                                  options=config.options)
        meta = compiled.metadata
        result.num_warps, result.num_stages, result.shared = meta.num_warps, meta.num_stages, meta.shared
        result.registers, result.spill_stores, result.spill_loads = _ptxas_usage(
            compiled.asm["ptx"], arch, meta.enable_fp_fusion)
    except Exception as error:  # a kernel that does not compile is a result, not a crash
        result.error = f"{type(error).__name__}: {str(error).strip()}"
    result.seconds = time.perf_counter() - start
    return result


def configurations(only=None):
    """Every Config of the families in ``only`` (all of CONFIGS when None)."""
    if unknown := set(only or ()) - set(CONFIGS):
        raise ValueError(f"compile_check: unknown kernel families {sorted(unknown)}; known: {', '.join(CONFIGS)}")
    return [config for family in (only or CONFIGS) for config in CONFIGS[family]()]


def check(archs=(90, 80), only=None, configs=None):
    """Compile ``configs`` (default: those of the families ``only``) for every arch -> [Result]."""
    require_compiler()
    configs = configurations(only) if configs is None else configs
    return [compile_config(config, arch) for arch in archs for config in configs]


def _status(result):
    if result.error is not None:
        return "FAILED: " + result.error.splitlines()[0]
    if result.fits:
        return "ok" if result.expected_to_fit else f"ok (fits, though not claimed: {result.why_not})"
    if not result.expected_to_fit:
        return f"too big, as expected: {result.why_not}"
    return "TOO BIG for this target's shared memory"


def format_table(results):
    """A readable table of ``results``, one row per kernel and target."""
    width = max([len(r.name) for r in results] + [6])
    header = "target  warps stages  regs  spill st/ld (B)  shared (B)   limit (B)  compile   status"
    lines = [f"{'kernel':<{width}}  {header}"]
    number = (lambda value: "-" if value is None else str(value))
    for r in results:
        spills = "-" if r.spill_stores is None else f"{r.spill_stores}/{r.spill_loads}"
        lines.append(f"{r.name:<{width}}  sm_{r.arch:<4} {number(r.num_warps):>5} {number(r.num_stages):>6} "
                     f"{number(r.registers):>5}  {spills:>15}  {number(r.shared):>10}  {r.shared_limit:>10}  "
                     f"{r.seconds:6.1f} s   {_status(r)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.kernels.compile_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[90, 80], choices=sorted(SHARED_MEMORY_LIMIT),
                        help="compute capabilities to compile for (default: 90 80)")
    parser.add_argument("--only", type=lambda text: [name for name in text.split(",") if name],
                        help=f"comma-separated kernel families (default: all of {','.join(CONFIGS)})")
    args = parser.parse_args(argv)
    try:
        results = check(args.arch, args.only)
    except (RuntimeError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    spilling = [r for r in results if r.spill_stores]
    print(f"\n{len(results) - len(failed)}/{len(results)} ok")
    for label, which in (("spill registers", spilling), ("FAILED", failed)):
        if which:
            print(f"{label}: " + ", ".join(f"{r.name} (sm_{r.arch})" for r in which))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

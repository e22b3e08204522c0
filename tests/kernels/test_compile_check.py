"""minidl.kernels.compile_check: the kernels compile for real GPU targets with Triton's compiler
and its bundled ptxas, no GPU needed. Compiling needs a process without Triton's interpreter,
which the root conftest turns on, so every compile runs in a subprocess (with an empty Triton
cache, so that it really compiles): one representative launch per kernel module."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidl.kernels import compile_check

ROOT = Path(__file__).resolve().parents[2]
KiB = 1024

missing = compile_check.missing_compiler()
needs_compiler = pytest.mark.skipif(missing is not None, reason=f"cannot compile for NVIDIA targets: {missing}")

# one launch per kernel module; the GRU at H = 128 is the shared-memory claim of recurrent.py
GRU = "gru_forward H=128 fp32 tf32"
REPRESENTATIVES = (GRU, "gru_forward H=32 fp64", "attention_forward d=64 causal masked fp32 tf32",
                   "window_attention_forward d=128 r=5 fp32", "cross_entropy C=1024 fp32")


def _python(tmp_path, *args):
    """``python *args`` in the repository, without TRITON_INTERPRET, with a fresh Triton cache."""
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path / "triton-cache"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@needs_compiler
def test_one_launch_per_module_compiles_for_sm_90_and_sm_80(tmp_path):
    code = f"""
import dataclasses, json
from minidl.kernels import compile_check as cc
configs = [c for c in cc.configurations() if c.name in {REPRESENTATIVES!r}]
results = cc.check(archs=(90, 80), configs=configs)
print(json.dumps([dict(dataclasses.asdict(r), fits=r.fits, ok=r.ok) for r in results]))
"""
    run = _python(tmp_path, "-c", code)
    assert run.returncode == 0, run.stderr
    results = {(r["name"], r["arch"]): r for r in json.loads(run.stdout.splitlines()[-1])}
    assert set(results) == {(name, arch) for name in REPRESENTATIVES for arch in (90, 80)}
    for (name, arch), r in results.items():
        assert r["error"] is None, f"{name} sm_{arch}: {r['error']}"
        assert r["registers"] > 0 and r["spill_stores"] >= 0 and r["shared"] >= 0
        assert r["ok"]
    # recurrent.py: the GRU's three 128×128 float32 weight tiles stay in shared memory (192 KiB, plus
    # the staged h tile): they fit a Hopper's 227 KiB, not an A100's 163 KiB, and the check knows it
    hopper, ampere = results[GRU, 90], results[GRU, 80]
    assert 192 * KiB <= hopper["shared"] <= 227 * KiB and hopper["fits"] and hopper["expected_to_fit"]
    assert ampere["shared"] > 163 * KiB and not ampere["fits"] and not ampere["expected_to_fit"]
    assert hopper["num_warps"] == 8 and hopper["num_stages"] == 1  # recurrent.launch_config at H = 128
    # on tensor cores ("tf32") neither the GRU nor the attention spills registers (in "ieee" both do)
    assert all(r["spill_stores"] == 0 for (name, arch), r in results.items() if "tf32" in name and arch == 90)


@needs_compiler
def test_command_line_prints_the_table_and_exits_zero(tmp_path):
    run = _python(tmp_path, "-m", "minidl.kernels.compile_check", "--arch", "80", "--only", "losses")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["kernel", "target", "warps"]
    assert sum("sm_80" in line and line.rstrip().endswith("ok") for line in lines) == 9
    assert "9/9 ok" in run.stdout


def test_refuses_to_run_under_the_interpreter(monkeypatch, capsys):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(RuntimeError, match="interpreter.*TRITON_INTERPRET='1'.*without it"):
        compile_check.check(configs=[])
    assert compile_check.main(["--only", "losses"]) == 2
    assert "env -u TRITON_INTERPRET" in capsys.readouterr().err


def test_only_the_gru_at_128_is_expected_not_to_fit_and_only_on_sm_80():
    configs = compile_check.configurations()  # block sizes only: works under the interpreter too
    # rnn 2·12 + 4, gru 2·6 + 2, window attention 9, attention 3·9, losses 9
    assert len({c.name for c in configs}) == len(configs) == 28 + 14 + 9 + 27 + 9
    assert {c.name: set(c.too_big_for) for c in configs if c.too_big_for} == {
        f"gru_{direction} H=128 fp32 {dot}": {80} for direction in ("forward", "backward") for dot in ("ieee", "tf32")}
    with pytest.raises(ValueError, match="unknown kernel families"):
        compile_check.configurations(["lstm"])


def test_a_result_fails_only_where_we_claim_it_fits():
    def result(shared, expected_to_fit=True, error=None):
        return compile_check.Result("k", 80, shared=shared, shared_limit=163 * KiB, expected_to_fit=expected_to_fit,
                                    error=error)

    assert result(100 * KiB).ok and not result(200 * KiB).ok
    assert result(200 * KiB, expected_to_fit=False).ok
    assert not result(None, error="CompilationError: ...").ok

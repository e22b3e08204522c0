"""``minidl bench kernels``: without a GPU it says so; its contenders run and do the same work."""
import numpy as np
import pytest
import torch

from minidl.bench import kernels as bench
from minidl.cli import main


def _numpy(grad):
    return grad.numpy() if hasattr(grad, "_ctx") else grad.detach().cpu().numpy()


def test_without_a_gpu_it_says_so_and_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "kernels"]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    assert main(["bench", "kernels", "--only", "gru,lstm"]) == 1


@pytest.mark.parametrize("loss", ["cross_entropy", "distillation"])
def test_loss_contenders_agree(kernel_device, loss):
    steps = bench.loss_contenders(loss, 6, 5, device=kernel_device)
    results = {name: _numpy(step()[0]) for name, step in steps.items()}
    for name in ("reference", "pytorch"):
        np.testing.assert_allclose(results["minidl+triton"], results[name], rtol=1e-4, atol=1e-6)


def test_attention_contenders_agree(kernel_device):
    steps = bench.attention_contenders(2, 13, 4, device=kernel_device)
    ours, reference, dense = ([_numpy(g) for g in step()] for step in steps.values())
    for mine, want, theirs in zip(ours, reference, dense):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(mine, theirs[:, 0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_mha_contenders_agree(kernel_device, causal):
    steps = bench.mha_contenders(1, 9, 4, causal, device=kernel_device)
    ours, reference, theirs = ([_numpy(g) for g in step()] for step in steps.values())
    for mine, want, sdpa in zip(ours, reference, theirs):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(mine, sdpa, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_recurrent_contenders_run(kernel_device, kind):
    """Ours and cuDNN's layers have different weights (and GRU equations): only shapes compare."""
    steps = bench.recurrent_contenders(kind, 2, 3, 4, device=kernel_device)
    ours, reference, cudnn = ([_numpy(g) for g in step()] for step in steps.values())
    for mine, want in zip(ours, reference):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-5)
    assert ours[0].shape == cudnn[0].shape == (2, 3, 4)  # dL/dx


def test_the_tables_print(monkeypatch, capsys):
    """The GPU-only part, on made-up times: a row per size for every family."""
    def contenders(*names):
        return lambda *sizes: dict.fromkeys(names, lambda: None)
    monkeypatch.setattr(bench, "recurrent_contenders", contenders("minidl+triton", "reference", "cuDNN"))
    monkeypatch.setattr(bench, "attention_contenders", contenders("minidl+triton", "reference", "dense SDPA"))
    monkeypatch.setattr(bench, "mha_contenders", contenders("minidl+triton", "reference", "torch SDPA"))
    monkeypatch.setattr(bench, "loss_contenders", contenders("minidl+triton", "reference", "pytorch"))
    monkeypatch.setattr(bench, "_time", lambda steps: {name: 1.0 if name == "minidl+triton" else 2.0 for name in steps})
    monkeypatch.setattr(bench, "_peak_memory", lambda step: 2 ** 20)
    monkeypatch.setattr("triton.testing.get_dram_gbps", lambda: 3350.0)
    bench.bench_recurrent("gru")
    bench.bench_attention()
    bench.bench_mha()
    bench.bench_losses()
    out = capsys.readouterr().out
    assert out.count("2.00x") == 12 + 12 + 8 + 2 * 12  # B × T × H (or C) for each table; mha: T × d × causal
    assert "GB/s" in out and "dense MiB" in out and "ref MiB" in out

"""``minidl bench kernels``: without a GPU it says so; its contenders run and do the same work.
``minidl bench transformer``: minidl and PyTorch start from the same weights and compute the same
step. ``--threads``: every bench holds the same thread count for both sides."""
import importlib
import json

import numpy as np
import pytest
import torch

from minidl import MinidlError
from minidl.bench import kernels as bench
from minidl.bench import transformer as transformer_bench
from minidl.bench.threads import thread_info, usable_cpus
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


# --- minidl bench transformer, and --threads on every bench ------------------------------------

TINY_VOCAB, TINY_T, TINY_BATCH = 100, 16, 4


@pytest.mark.parametrize("kind", ["classifier", "mlm"])
def test_transformer_sides_agree_with_pytorch(kind):
    """Same copied weights, same batch, dropout 0: both minidl backends give PyTorch's logits, its
    first-step loss, and its loss after one Adam step (so the gradients and the update agree too)."""
    batch = transformer_bench.make_batch(TINY_VOCAB, TINY_BATCH, TINY_T)
    results = transformer_bench.first_steps(kind, TINY_VOCAB, TINY_T, batch)
    assert set(results) == {"minidl NumPy", "minidl torch-CPU", "PyTorch"}
    theirs = results.pop("PyTorch")
    N = len(batch.positions)
    assert theirs["logits"].shape == ((TINY_BATCH, 2) if kind == "classifier" else (N, TINY_VOCAB))
    assert theirs["second loss"] != pytest.approx(theirs["loss"], rel=1e-3)  # the step moved the weights
    for ours in results.values():
        np.testing.assert_allclose(ours["logits"], theirs["logits"], rtol=1e-4, atol=1e-5)
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
        assert ours["second loss"] == pytest.approx(theirs["second loss"], rel=1e-4)


def _out_projection_not_transposed(theirs):
    weight = theirs.encoder.layers[1].self_attn.out_proj.weight
    weight.copy_(weight.T.clone())


def _query_and_key_swapped(theirs):
    weight = theirs.encoder.layers[0].self_attn.in_proj_weight
    D = weight.shape[1]
    weight.copy_(torch.cat([weight[D:2 * D], weight[:D], weight[2 * D:]]))


@pytest.mark.parametrize("mistake", [_out_projection_not_transposed, _query_and_key_swapped])
def test_transformer_check_stops_on_a_wrong_weight_copy(monkeypatch, mistake):
    copy = transformer_bench.copy_weights

    def wrong_copy(ours, theirs):
        copy(ours, theirs)
        with torch.no_grad():
            mistake(theirs)
        return theirs
    monkeypatch.setattr(transformer_bench, "copy_weights", wrong_copy)
    batch = transformer_bench.make_batch(TINY_VOCAB, TINY_BATCH, TINY_T)
    with pytest.raises(MinidlError, match="disagree before timing"):
        transformer_bench.check_agreement("classifier", TINY_VOCAB, TINY_T, batch)


def test_transformer_bench_rows_have_positive_ratios():
    said = []
    result = transformer_bench.run(models=("mlm",), lengths=(TINY_T,), batch=TINY_BATCH, vocab=TINY_VOCAB, rounds=1,
                                   steps=1, memory=False, threads=1, progress=said.append)
    assert said[1] == f"bench transformer: mlm T={TINY_T}: round 1/1 ..."   # it was silent for ~40 s per (model, T)
    assert [(row["model"], row["T"], row["measure"]) for row in result["rows"]] == [("mlm", TINY_T, "train"),
                                                                                    ("mlm", TINY_T, "infer")]
    for row in result["rows"]:
        assert set(row["sides"]) == {"minidl NumPy", "minidl torch-CPU", "PyTorch"}
        assert all(side["ms"] > 0 and side["per_second"] > 0 and side["ratio"] > 0 for side in row["sides"].values())
        assert row["sides"]["PyTorch"]["ratio"] == 1.0
    assert max(result["agreement"][f"mlm T={TINY_T}"]["minidl NumPy"].values()) < 1e-4
    assert result["threads"]["torch"] == 1 and all(pool["threads"] == 1 for pool in result["threads"]["blas"])
    assert json.loads(json.dumps(result))["rows"][0]["unit"] == "steps/s"
    table = transformer_bench.report(result)
    assert "ratio NumPy" in table and "ratio torch-CPU" in table and "rev/s" in table


def test_transformer_bench_says_so_before_the_agreement_check_and_the_memory(monkeypatch):
    """Both ran without a line: ~20 s before the first round, ~50 s (a fresh process per side) before "done"."""
    said = []
    monkeypatch.setattr(transformer_bench, "peak_memory", lambda *args: {"train": 0, "infer": 0})
    transformer_bench.run(models=("mlm",), lengths=(TINY_T,), batch=TINY_BATCH, vocab=TINY_VOCAB, rounds=1, steps=1,
                          threads=1, progress=said.append)
    assert said[0] == f"bench transformer: mlm T={TINY_T}: checking minidl against PyTorch ..."
    assert said[2] == f"bench transformer: mlm T={TINY_T}: peak memory (minidl NumPy, minidl torch-CPU, PyTorch) ..."
    assert said[3].startswith(f"bench transformer: mlm T={TINY_T} done")



    """--shape builds the same other-sized model on every side (they still agree), and says so in the table."""
    shape = {"d_model": 16, "num_heads": 2, "num_layers": 3, "d_ff": 24}
    result = transformer_bench.run(models=("classifier",), lengths=(TINY_T,), batch=TINY_BATCH, vocab=TINY_VOCAB,
                                   rounds=1, steps=1, memory=False, threads=1, shape=json.dumps(shape))
    assert {k: result["settings"][k] for k in shape} == shape
    assert max(result["agreement"][f"classifier T={TINY_T}"]["minidl torch-CPU"].values()) < 1e-4
    assert "D=16, h=2, L=3, F=24" in transformer_bench.report(result)
    model = transformer_bench.build_minidl("classifier", TINY_VOCAB, TINY_T, 0.0, shape=shape)
    assert len(model.encoder.layers) == 3
    for models, lengths, words in ((("mlm", "mlm"), (TINY_T,), "--models: mlm,mlm repeats"),
                                   (("mlm",), (8, 8), "--lengths: 8,8 repeats")):   # rows printed twice
        with pytest.raises(MinidlError, match=words):
            transformer_bench.run(models=models, lengths=lengths)
    with pytest.raises(MinidlError, match=r"^--vocab must be > 2 \(got 2\)$"):   # it listed every size
        transformer_bench.run(vocab=2, lengths=(TINY_T,))
    for bad, words in (("[1]", "expected a JSON object"), ('{"layers": 4}', "unknown keys"),
                       ('{"d_model": 30, "num_heads": 4}', "num_heads dividing d_model")):
        with pytest.raises(MinidlError, match=words):
            transformer_bench.run(shape=bad)


@pytest.mark.parametrize("device", ["gpu", "torch"])
def test_transformer_bench_refuses_a_device_in_its_own_words(capsys, device):
    """The check of every command's --device ran first and advised "torch", which this bench then refused."""
    assert main(["bench", "transformer", "--device", device]) == 1
    assert capsys.readouterr().err == ('minidl bench transformer: --device: "cpu" (minidl on NumPy and on torch-CPU '
                                       f'against PyTorch) or "cuda" / "cuda:N", got {device!r}\n')


def test_transformer_peak_memory_in_a_fresh_process():
    """Training keeps activations, gradients and Adam's moments (over 2 MiB of them here): more than inference."""
    memory = transformer_bench.peak_memory("classifier", "minidl NumPy", TINY_VOCAB, 32, 8, 0.1, threads=1)
    assert memory["train"] > 2 * 2 ** 20 and memory["train"] >= memory["infer"] >= 0


@pytest.mark.parametrize("what", ["mlp", "gru", "kernels", "transformer"])
def test_threads_option_on_every_bench(monkeypatch, capsys, what):
    """--threads N holds for torch and every BLAS during the run, and is undone after; N < 1 is
    refused in one line before the bench starts, and so is N above the usable CPUs."""
    module = importlib.import_module(f"minidl.bench.{what}")
    seen = []
    monkeypatch.setattr(module, "main", lambda args: seen.append(thread_info()))
    before = thread_info()
    with pytest.raises(SystemExit) as stop:
        main(["bench", what, "--threads", "0"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == f"minidl bench {what}: error: argument --threads: must be a whole number >= 1, got 0"
    assert seen == []
    too_many = usable_cpus() + 1   # 100000 crashed torch (rc 139); above the CPUs every bench ran ~10x slower
    assert main(["bench", what, "--threads", str(too_many)]) == 1 and seen == []
    assert capsys.readouterr().err == (f"minidl bench {what}: --threads must be a whole number from 1 to "
                                       f"{usable_cpus()} (the CPUs this process may use), got {too_many}\n")
    assert main(["bench", what, "--threads", "1"]) == 0
    assert seen[0]["torch"] == 1 and all(pool["threads"] == 1 for pool in seen[0]["blas"])
    assert thread_info() == before


def test_bench_gru_looks_for_the_imdb_data_before_timing(monkeypatch, capsys, tmp_path):
    """--imdb-epoch --data nope ran the step benchmark (about 10 s, its table printed) and then said the
    data was not found."""
    from minidl.bench import gru

    monkeypatch.setattr(gru, "run", lambda **kwargs: pytest.fail("the step benchmark ran first"))
    assert main(["bench", "gru", "--imdb-epoch", "--data", str(tmp_path / "nope")]) == 1
    assert "IMDB reviews not found" in capsys.readouterr().err
    assert main(["bench", "gru", "--data", str(tmp_path / "nope")]) == 1   # ignored, without a word
    assert capsys.readouterr().err.splitlines()[0] == ("minidl bench gru: --data is read only for --imdb-epoch; add "
                                                       "--imdb-epoch, or leave --data out")

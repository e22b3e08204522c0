"""Sweeps: the grid, job keys, resuming after a crash, the results file, executors, summaries."""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from minidl.data import make_reviews
from minidl.experiments import sweep
from minidl.experiments.sweep import (InlineExecutor, grid, job_key, load_results, parse_hidden, parse_seeds,
                                      parse_settings, run_sweep, series_label, summarise, table_markdown)
from minidl.train import TrainConfig

TINY = dict(embed_dim=8, epochs=1, train_limit=200, max_length=12, batch_size=32, validation=0.2, patience=None)


def quiet(*args):
    pass


def tiny_grid(models=("gru", "rnn"), hidden=(4, 8), seeds=(0,)):
    return grid(list(models), list(hidden), list(seeds), **TINY)


def comparable(record):
    """A record without what legitimately differs between runs: wall-clock time, host and threads."""
    return {k: v for k, v in record.items() if k not in ("seconds", "host", "threads")}


class Serial:
    """The smallest executor: submit() runs nothing; result() trains. No add_done_callback,
    so run_sweep takes results in submission order. Records what it was given."""

    def __init__(self, crash_after=None):
        self.submitted, self.ran, self.crash_after = [], [], crash_after

    def submit(self, fn, *args):
        self.submitted.append(args[0])
        executor = self

        class Pending:
            def result(self):
                if executor.crash_after is not None and len(executor.ran) == executor.crash_after:
                    raise KeyboardInterrupt("simulated crash")
                executor.ran.append(args[0])
                return fn(*args)

        return Pending()


# ----------------------------------------------------------------------------- the grid

def test_grid_expands_seeds_models_hidden_with_fixed_and_per_model_settings():
    configs = grid(["rnn", "attention"], [8, 16], [0, 1], per_model={"attention": {"model_options": {"radius": 5}}},
                   data="synthetic", epochs=4, max_length=100, model_options={"padding_idx": 0})
    assert len(configs) == 2 * 2 * 2
    assert [(c["seed"], c["model"], c["hidden"]) for c in configs[:4]] == [
        (0, "rnn", 8), (0, "rnn", 16), (0, "attention", 8), (0, "attention", 16)]
    defaults = TrainConfig().to_dict()
    for c in configs:
        assert set(c) == set(defaults)                      # complete TrainConfig dicts
        assert c["epochs"] == 4 and c["max_length"] == 100 and c["lr"] == defaults["lr"]
    assert configs[0]["model_options"] == {"padding_idx": 0}
    assert configs[2]["model_options"] == {"padding_idx": 0, "radius": 5}  # per-model extends fixed
    TrainConfig.from_dict(configs[2])


def test_grid_takes_mlp_architectures_and_refuses_them_for_sequence_models():
    hidden = [[50], [64, 32], [64, 32, 16], [200, 50], [32, 16], [8, 16, 32]]
    configs = grid(["mlp", "softmax"], hidden, [0], data="imdb")
    assert [c["hidden"] for c in configs] == hidden * 2
    assert grid("mlp", [(64, 32)], [0])[0]["hidden"] == [64, 32]   # tuples become lists (JSON)
    with pytest.raises(ValueError, match=r"only the MLP scorers .*'gru' needs one int"):
        grid(["gru"], [[64, 32]], [0])


@pytest.mark.parametrize("call, message", [
    (lambda: grid(["gru"], [8], [0], epoch=3), r"unknown training settings \['epoch'\]"),
    (lambda: grid(["lstm"], [8], [0]), r"unknown model\(s\) \['lstm'\]"),
    (lambda: grid(["gru"], [8], [0], per_model={"rnn": {"lr": 1}}), r"not among the swept models"),
    (lambda: grid(["gru"], [8], [0], hidden=3), r"grid's axes"),
    (lambda: grid(["gru"], [8.5], [0]), r"hidden size must be an int"),
    (lambda: grid(["rnn"], [0], [0]), r"^rnn, hidden 0: --hidden must be a whole number >= 1"),
    (lambda: grid(["rnn", "gru"], [8], [0], per_model={"gru": {"dropout": 2}}), r"^gru, hidden 8: --dropout must lie"),
    (lambda: grid(["gru"], [8], [0], embeddings="no-such-vectors.txt"), r"--embeddings 'no-such-vectors.txt': no such"),
])
def test_grid_names_bad_settings(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_job_key_is_stable_and_depends_on_every_setting():
    config = grid(["mlp"], [[64, 32]], [0], epochs=2)[0]
    key = job_key(config)
    assert len(key) == 16 and int(key, 16) >= 0
    partial = {"model": "mlp", "hidden": (64, 32), "seed": 0, "epochs": 2}   # defaults filled in, tuple == list
    assert job_key(partial) == key
    assert job_key(dict(reversed(list(config.items())))) == key
    assert job_key({**config, "lr": 0.01}) != key
    assert job_key({**config, "seed": 1}) != key


def test_results_written_before_a_setting_existed_still_count_as_done(tmp_path):
    """A record from before TrainConfig gained settings (its config lacks them, its stored key
    hashed the old complete config) is the same job as today's: the sweep does not run it
    again, and the summary does not count it twice."""
    path = tmp_path / "results.jsonl"
    configs = tiny_grid(seeds=(0,))
    run_sweep(configs, path, executor=Serial(), log=quiet)
    old_lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        for later in ("word_dropout", "embedding_lr", "train_windows"):
            del record["config"][later]
        record["key"] = "0123456789abcdef"                # what an older job_key gave
        old_lines.append(json.dumps(record))
    path.write_text("\n".join(old_lines) + "\n")
    again = Serial()
    records = run_sweep(configs, path, executor=again, log=quiet)
    assert again.submitted == [] and len(records) == len(configs)
    assert job_key({**configs[0], "train_windows": True}) != job_key(configs[0])
    assert "train_windows" not in records[0]["config"]
    today = TrainConfig.from_dict({**records[0]["config"], "seed": 5}).to_dict()      # every setting written
    newer = {**records[0], "config": today}
    rows = summarise([records[0], newer])
    assert len(rows) == 1 and rows[0]["seeds"] == 2 and rows[0]["settings"] == {}


def test_a_job_with_word_vectors_is_done_once(tmp_path):
    """train --embeddings records the vectors' width as embed_dim: the key computed again from the record no longer
    matched the job's, and every rerun of a sweep with word vectors (ex2's run_all.sh) trained them all anew."""
    words = sorted({word for text in make_reviews(300, seed=1).texts for word in text.split()})
    vectors = tmp_path / "v6.txt"
    vectors.write_text("".join(f"{word} {' '.join(['0.1'] * 6)}\n" for word in words))
    configs, path = grid(["mlp"], [4], [0], **{**TINY, "embeddings": str(vectors)}), tmp_path / "results.jsonl"
    run_sweep(configs, path, executor=Serial(), log=quiet)
    again = Serial()
    run_sweep(configs, path, executor=again, log=quiet)
    assert again.submitted == [] and len(path.read_text().splitlines()) == 1


# ----------------------------------------------------------------------------- running and resuming

def test_an_interrupted_sweep_resumes_with_only_the_missing_jobs(tmp_path):
    path = tmp_path / "results.jsonl"
    configs = tiny_grid(seeds=(0, 1))                        # 8 jobs
    crashing = Serial(crash_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(configs, path, executor=crashing, log=quiet)
    assert len(path.read_text().splitlines()) == 3           # the finished jobs are on disk

    again = Serial()
    records = run_sweep(configs, path, executor=again, log=quiet)
    assert again.submitted == configs[3:]                    # only the missing ones ran
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
    assert sorted(keys) == sorted(job_key(c) for c in configs)   # each job exactly once
    assert [r["key"] for r in records] == [job_key(c) for c in configs]

    third = Serial()
    assert [comparable(r) for r in run_sweep(configs, path, executor=third, log=quiet)] == \
           [comparable(r) for r in records]
    assert third.submitted == []


def test_a_results_file_replaced_during_the_sweep_still_gets_every_line(tmp_path):
    """A git checkout or an editor's save replaces the file (a new inode) while jobs run: the
    lines that finish after it go into the new file, not into the replaced one."""
    path = tmp_path / "results.jsonl"
    configs = tiny_grid(models=("gru",), hidden=(4,), seeds=(0, 1))

    def replace_after_the_first(line):
        if line.startswith("[1/2]"):
            kept = path.read_text()
            os.remove(path)
            path.write_text(kept)                            # same content, another inode
    run_sweep(configs, path, executor=Serial(), log=replace_after_the_first)
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
    assert keys == [job_key(c) for c in configs]


def test_a_record_holds_the_config_test_metrics_and_a_trimmed_history(tmp_path):
    config = tiny_grid(models=("mlp",), hidden=(4,))[0]
    (record,) = run_sweep([config], tmp_path / "r.jsonl", executor=InlineExecutor(), log=quiet)
    assert record["key"] == job_key(config) and record["config"] == config
    assert set(record["test"]) >= {"accuracy", "f1", "auc", "loss", "confusion_matrix", "n"}
    assert record["steps"] > 0 and record["seconds"] > 0 and record["stopped_early"] is False
    assert record["threads"].startswith(f"torch {torch.get_num_threads()}; BLAS: ")   # a run's digits depend on them
    assert record["history"] and all("confusion_matrix" not in h for h in record["history"])
    assert load_results(tmp_path / "r.jsonl") == [record]


def test_each_validation_check_of_a_job_prints_a_line_naming_the_job(tmp_path, capsys):
    config = {**tiny_grid(models=("mlp",), hidden=(4,))[0], "eval_every": 2}
    (record,) = run_sweep([config], tmp_path / "r.jsonl", executor=InlineExecutor(), log=quiet)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(record["history"]) > 1
    for line, check in zip(lines, record["history"]):
        assert line.startswith("  mlp hidden=4 seed=0: step ") and f"step {check['step']:,} " in line
        assert f"validation accuracy {check['accuracy']:.3f}, loss {check['loss']:.3f}" in line


def test_a_truncated_last_line_is_ignored_with_a_warning_then_cut_off(tmp_path):
    path = tmp_path / "results.jsonl"
    configs = tiny_grid()
    run_sweep(configs[:2], path, executor=InlineExecutor(), log=quiet)
    complete = path.read_text()
    line = json.dumps(run_sweep(configs[2:3], tmp_path / "other.jsonl", executor=InlineExecutor(), log=quiet)[0])
    path.write_text(complete + line[: len(line) // 2])      # a crash in the middle of a write

    with pytest.warns(UserWarning, match="truncated last line"):
        assert len(load_results(path)) == 2
    messages = []
    with pytest.warns(UserWarning, match="removing a truncated last line"):
        records = run_sweep(configs, path, executor=InlineExecutor(), log=messages.append)
    assert any("2 already done" in m and "2 to run" in m for m in messages)
    assert len(records) == 4
    assert path.read_text().startswith(complete)
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == [job_key(c) for c in configs]


def test_a_damaged_line_that_is_not_the_last_is_an_error_naming_it(tmp_path):
    path = tmp_path / "results.jsonl"
    run_sweep(tiny_grid(models=("mlp",)), path, executor=InlineExecutor(), log=quiet)
    first, second = path.read_text().splitlines()
    path.write_text(first[:-5] + "\n" + second + "\n")
    with pytest.raises(ValueError, match=r"line 1 is not a sweep result"):
        load_results(path)
    with pytest.raises(FileNotFoundError, match="minidl sweep --results"):
        load_results(tmp_path / "missing.jsonl")


def test_a_failing_job_is_recorded_with_its_error_and_retried_by_the_next_sweep(tmp_path):
    path = tmp_path / "results.jsonl"
    good = tiny_grid(models=("mlp",), hidden=(4,))[0]
    bad = {**good, "data": str(tmp_path / "no-such-table.csv")}
    messages = []
    records = run_sweep([good, bad], path, executor=InlineExecutor(), log=messages.append)
    assert "error" not in records[0]
    assert records[1]["key"] == job_key(bad) and "no-such-table.csv" in records[1]["error"]
    assert "Traceback" in records[1]["traceback"]
    assert any("FAILED" in m and "no-such-table" in m for m in messages)
    assert any("1 FAILED" in m for m in messages)
    assert len(summarise(records)) == 1                      # failures are left out of summaries

    retry = Serial()
    messages.clear()
    run_sweep([good, bad], path, executor=retry, log=messages.append)
    assert retry.submitted == [bad]
    assert any("1 of them failed before and are retried" in m for m in messages)
    assert [r["key"] for r in load_results(path)] == [job_key(good), job_key(bad)]  # one record per job


def test_custom_executors_are_used_and_not_shut_down(tmp_path):
    configs = tiny_grid()
    serial = Serial()
    expected = run_sweep(configs, tmp_path / "serial.jsonl", executor=serial, log=quiet)
    assert serial.ran == configs
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = run_sweep(configs, tmp_path / "threads.jsonl", executor=pool, log=quiet)
        assert pool.submit(lambda: 42).result() == 42       # still usable: run_sweep did not shut it down
    assert [comparable(r) for r in threaded] == [comparable(r) for r in expected]
    # the file is in the order jobs finished; as records (one per key) it holds the same
    on_disk = {r["key"]: comparable(r) for r in load_results(tmp_path / "threads.jsonl")}
    assert on_disk == {r["key"]: comparable(r) for r in expected}


def test_a_local_process_pool_gives_the_same_results_as_a_serial_run(tmp_path):
    configs = tiny_grid(models=("gru", "mlp"), hidden=(4, 8))
    serial = run_sweep(configs, tmp_path / "serial.jsonl", executor=InlineExecutor(), log=quiet)
    messages = []
    pooled = run_sweep(configs, tmp_path / "pool.jsonl", max_workers=2, log=messages.append)
    assert any("2 local worker processes" in m for m in messages)
    assert any(m.startswith("[4/4]") for m in messages)
    assert [comparable(r) for r in pooled] == [comparable(r) for r in serial]


SWEEP_THAT_HOLDS = """
import os, time
from minidl.experiments import sweep

def hold(config):
    # a job that does not end; the file it writes says which worker process runs it
    open(os.path.join({folder!r}, str(os.getpid())), "w").close()
    time.sleep(300)

if __name__ == "__main__":
    sweep.run_job = hold  # the workers run it as __mp_main__.hold: spawn imports this script again
    sweep.run_sweep(sweep.grid(["mlp"], [4, 8], [0]), {results!r}, max_workers=2, log=lambda *args: None)
"""


def children_of(pid):
    """The PIDs of the processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def running(pid):
    """Whether ``pid`` is a live process (a zombie waiting for its new parent to reap it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the worker processes in /proc (Linux)")
@pytest.mark.parametrize("affinity, jobs, workers, threads",
                         [({0}, 8, 1, 1), ({0, 1, 2, 3}, 8, 4, 1), ({0, 1, 2, 3, 4, 5}, 3, 3, 2)])
def test_the_local_pool_shares_the_cpus_this_process_may_use(monkeypatch, affinity, jobs, workers, threads):
    """`taskset -c 0 minidl sweep` (or a container's cpuset) gets one worker with one thread,
    not one per CPU of the machine: two sweeps pinned to a core each do not fight over them."""
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    made = {}
    monkeypatch.setattr(sweep, "ProcessPoolExecutor", lambda n, **kw: made.update(n=n, initargs=kw["initargs"]))
    messages = []
    sweep._local_executor(None, jobs, messages.append)
    assert made["n"] == workers and made["initargs"][0] == threads
    assert messages == [f"running on {workers} local worker process{'es' if workers > 1 else ''}"]


def test_threads_given_are_each_workers_whatever_the_cpus(monkeypatch):
    """`minidl sweep --workers 1 --threads 1` on two CPUs: one worker with one thread (two such sweeps
    side by side run each job as a two-worker sweep does, with the same digits), not both CPUs."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    made = {}
    monkeypatch.setattr(sweep, "ProcessPoolExecutor", lambda n, **kw: made.update(n=n, initargs=kw["initargs"]))
    sweep._local_executor(1, 3, lambda message: None, threads=1)
    assert made["n"] == 1 and made["initargs"][0] == 1
    sweep._local_executor(1, 3, lambda message: None)
    assert made["n"] == 1 and made["initargs"][0] == 2


def test_a_worker_keeps_its_thread_cap_for_its_whole_life():
    """torch and every BLAS pool (NumPy's and SciPy's OpenBLAS, even one loaded later) stay at the
    worker's share after its initializer returns (in a fresh process: the cap is process-wide)."""
    code = ("import json, os\n"
            "from minidl.experiments.sweep import _init_worker\n"
            "_init_worker(1, os.getppid())\n"
            "from minidl.bench.threads import thread_info\n"
            "print(json.dumps(thread_info()))")
    info = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert info["torch"] == 1 and len(info["blas"]) >= 1 and all(pool["threads"] == 1 for pool in info["blas"]), info


def test_a_worker_shows_a_warning_on_one_line_as_the_cli_does():
    """A spawned worker started with Python's format: file, line, the category and the code line."""
    code = ("import os\n"
            "from minidl.experiments.sweep import _init_worker\n"
            "from minidl.data.errors import DataWarning\n"
            "_init_worker(1, os.getppid())\n"
            "import warnings; warnings.warn('d.csv: 1 row(s) have an empty text', DataWarning)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stderr == "minidl sweep: warning: d.csv: 1 row(s) have an empty text\n"


def test_a_data_warning_the_sweep_showed_is_not_repeated_by_each_job(tmp_path, capsys):
    """Each job read the data again and warned again: every worker process (here: the sweep process's own jobs)."""
    from minidl.cli import main

    code = ("import os\n"
            "from minidl.experiments.sweep import _init_worker\n"
            "from minidl.data.errors import DataWarning\n"
            "_init_worker(1, os.getppid(), ['d.csv: 1 row(s) have an empty text'])\n"
            "import warnings; warnings.warn('d.csv: 1 row(s) have an empty text', DataWarning)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr == ""
    data = tmp_path / "d.csv"
    data.write_text("text,label\n,pos\n" + "".join(f"film {i} good,pos\nfilm {i} bad,neg\n" for i in range(20)))
    assert main(["sweep", "--data", str(data), "--models", "mlp", "--hidden", "[4]", "--seeds", "0,1", "--epochs", "1",
                 "--workers", "0", "--results", str(tmp_path / "results.jsonl")]) == 0
    assert capsys.readouterr().err.count("have an empty text") == 1


def test_killing_the_sweep_process_ends_its_workers_and_the_resource_tracker(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    script = tmp_path / "held_sweep.py"
    script.write_text(SWEEP_THAT_HOLDS.format(folder=str(started), results=str(tmp_path / "results.jsonl")))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    parent = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL)
    family = []
    try:
        deadline = time.monotonic() + 120
        while len(os.listdir(started)) < 2 and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = sorted(int(name) for name in os.listdir(started))
        assert len(workers) == 2, f"the sweep did not start 2 workers (exit status {parent.poll()})"
        family = children_of(parent.pid)           # the workers and multiprocessing's resource tracker
        assert set(workers) < set(family)
        parent.send_signal(signal.SIGKILL)         # no Python code of the sweep runs after this
        parent.wait()
        deadline = time.monotonic() + 30
        while any(running(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in family if running(pid)] == [], "processes of the killed sweep live on"
    finally:
        for pid in [parent.pid, *family]:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_duplicate_configs_run_once(tmp_path):
    config = tiny_grid(models=("mlp",), hidden=(4,))[0]
    executor, messages = Serial(), []
    records = run_sweep([config, dict(config)], tmp_path / "r.jsonl", executor=executor, log=messages.append)
    assert len(executor.submitted) == 1 and len(records) == 1
    assert any("1 duplicate" in m for m in messages)


def test_a_dask_cluster_is_an_executor_with_no_new_code(tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason='dask is optional: pip install "dask[distributed]" (the "cluster" extra)')
    configs = tiny_grid(models=("mlp", "gru"), hidden=(4,))
    expected = run_sweep(configs, tmp_path / "serial.jsonl", executor=InlineExecutor(), log=quiet)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        records = run_sweep(configs, tmp_path / "dask.jsonl", executor=client, log=quiet)
        assert client.submit(sum, [1, 2]).result() == 3      # the client is still ours
    assert [comparable(r) for r in records] == [comparable(r) for r in expected]
    assert len(load_results(tmp_path / "dask.jsonl")) == len(configs)


# ----------------------------------------------------------------------------- summaries

def fake(model, hidden, seed, accuracy, f1=0.5, auc=0.5, loss=0.7, **settings):
    config = TrainConfig(model=model, hidden=hidden, seed=seed, **settings).to_dict()
    return {"key": job_key(config), "config": config,
            "test": {"accuracy": accuracy, "f1": f1, "auc": auc, "loss": loss}}


def test_summarise_gives_mean_and_sample_std_over_seeds():
    results = [fake("gru", 64, 0, 0.80, f1=0.7), fake("gru", 64, 1, 0.90, f1=0.9), fake("gru", 64, 2, 0.85, f1=0.8),
               fake("gru", 16, 0, 0.70), fake("rnn", 16, 0, 0.60), fake("rnn", 16, 1, 0.62),
               {"key": "x", "config": TrainConfig(model="rnn", hidden=16, seed=2).to_dict(), "error": "boom"}]
    rows = summarise(results)
    assert [(r["model"], r["hidden"], r["seeds"]) for r in rows] == [("gru", 16, 1), ("gru", 64, 3), ("rnn", 16, 2)]
    gru64 = rows[1]
    assert gru64["accuracy"] == pytest.approx(0.85)
    assert gru64["accuracy_std"] == pytest.approx(0.05)      # sample std (ddof=1) of 0.80, 0.90, 0.85
    assert gru64["f1"] == pytest.approx(0.8) and gru64["f1_std"] == pytest.approx(0.1)
    assert gru64["loss"] == pytest.approx(0.7) and gru64["auc_std"] == pytest.approx(0.0)
    assert rows[0]["accuracy_std"] == 0.0                     # one seed
    assert rows[2]["accuracy"] == pytest.approx(0.61) and rows[2]["accuracy_std"] == pytest.approx(0.02 / math.sqrt(2))
    assert all(r["settings"] == {} for r in rows)

    table = table_markdown(rows)
    assert table.splitlines()[0] == "| model | hidden | seeds | accuracy | F1 | AUC |"
    assert "| gru | 64 | 3 | 0.850 ± 0.050 | 0.800 ± 0.100 | 0.500 ± 0.000 |" in table


def test_summarise_keeps_other_varying_settings_apart_and_renders_architectures():
    results = [fake("mlp", [64, 32], s, 0.8 + s / 100, lr=lr) for s in (0, 1) for lr in (0.01, 0.001)]
    results += [fake("mlp", [50], 0, 0.7, lr=0.01)]
    rows = summarise(results)
    assert [(r["hidden"], r["settings"], r["seeds"]) for r in rows] == [
        ([64, 32], {"lr": 0.001}, 2), ([50], {"lr": 0.01}, 1), ([64, 32], {"lr": 0.01}, 2)]  # by model, settings, x
    table = table_markdown(rows)
    assert table.splitlines()[0] == "| model | settings | architecture | seeds | accuracy | F1 | AUC |"
    assert "| mlp | lr=0.001 | [64, 32] | 2 | 0.805 ± 0.007 |" in table
    # a setting that differs only between models (attention's radius) is part of the model, not a column
    rows = summarise([fake("gru", 8, 0, 0.8), fake("attention", 8, 0, 0.8, model_options={"radius": 5})])
    assert all(r["settings"] == {} for r in rows)
    assert summarise([]) == [] and table_markdown([]) == "(no successful results)"


def test_settings_labels_name_vector_files_by_their_file_name():
    results = [fake("gru", 64, 0, 0.80, embeddings="/home/ann/.cache/minidl/imdb_ppmi_100d.txt", dropout=0.3),
               fake("gru", 64, 0, 0.82, embeddings="/home/ann/.cache/minidl/imdb_sgns_100d.txt", dropout=0.5)]
    rows = summarise(results)
    table = table_markdown(rows)
    assert "| gru | dropout=0.3, embeddings=imdb_ppmi_100d.txt | 64 | 1 | 0.800 |" in table    # one seed: no ±
    assert [series_label(r) for r in rows] == ["gru dropout=0.3 embeddings=imdb_ppmi_100d.txt",
                                               "gru dropout=0.5 embeddings=imdb_sgns_100d.txt"]
    assert series_label({"model": "gru", "settings": {"model_options": {"radius": 5}, "freeze_embeddings": True}}) \
        == 'gru model_options={"radius": 5} freeze_embeddings=true'


# ----------------------------------------------------------------------------- the command line

def test_parse_hidden_and_settings():
    assert parse_hidden("16,32, 64") == [16, 32, 64]
    assert parse_hidden("[50];[64,32];[64, 32, 16]") == [[50], [64, 32], [64, 32, 16]]
    assert parse_hidden("50;64,32") == [[50], [64, 32]]
    with pytest.raises(ValueError, match="cannot read hidden sizes"):
        parse_hidden("16,big")
    for parse, text in ((parse_seeds, "0,,1"), (parse_hidden, "16,,32"), (parse_hidden, "[16];[8,,4]")):   # ran 0, 1
        with pytest.raises(ValueError, match=re.escape(f"an empty item in {text!r}; remove the extra comma")):
            parse(text)
    fixed, per_model = parse_settings(["lr=0.01", "data=imdb", "embeddings=null", "validation=0.2", "clip_norm=none",
                                       'attention:model_options={"radius": 3}'], models=["gru", "attention"])
    # clip_norm=none, as train's --clip-norm and its message write it, was the string "none", refused
    assert fixed == {"lr": 0.01, "data": "imdb", "embeddings": None, "validation": 0.2, "clip_norm": None}
    assert per_model == {"attention": {"model_options": {"radius": 3}}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_settings(["lr"])
    with pytest.raises(ValueError, match="not among the swept models"):
        parse_settings(["rnn:lr=1"], models=["gru"])
    with pytest.raises(ValueError, match=r"--set 'lr=0.05': lr is already set to 0.01; give it once"):
        parse_settings(["lr=0.01", "lr=0.05"])      # the last one silently won
    with pytest.raises(ValueError, match="gru:lr is already set"):
        parse_settings(["lr=0.01", "gru:lr=0.02", "gru:lr=0.05"], models=["gru"])


def cli(argv):
    import argparse

    parser = argparse.ArgumentParser(prog="minidl")
    sweep.add_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_a_sweep_whose_every_job_failed_offers_no_plot(tmp_path, capsys, monkeypatch):
    """It printed "(no successful results)" and then "plot it: minidl plot ...", which refuses such a file."""
    failed = {"key": "k", "config": {"model": "mlp"}, "error": "boom"}
    results = tmp_path / "r.jsonl"
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: results.write_text(json.dumps(failed) + "\n") and [failed])
    assert cli(["sweep", "--models", "mlp", "--hidden", "4", "--workers", "0", "--results", str(results)]) == 1
    out = capsys.readouterr().out
    assert "(no successful results)" in out and "plot it" not in out


def test_the_sweep_and_plot_commands(tmp_path, capsys):
    results = str(tmp_path / "my sweep" / "results.jsonl")
    settings = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items() if k != "max_length"]
    argv = ["sweep", "--models", "mlp", "--hidden", "[4];[8,4]", "--seeds", "0,1", "--max-length", "12",
            "--workers", "0", "--results", results, *settings]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "[4/4] mlp hidden=[8,4] seed=1" in out and "| mlp | [8, 4] | 2 |" in out
    sweep_prefix = str(tmp_path / "my sweep" / "sweep")    # a path with a space: the command pastes as printed
    assert f"plot it: minidl plot --results '{results}' --out '{sweep_prefix}'" in out
    assert cli(argv) == 0
    assert "4 already done" in capsys.readouterr().out
    assert len(load_results(results)) == 4

    prefix = str(tmp_path / "figs" / "mlp")
    assert cli(["plot", "--results", results, "--out", prefix]) == 0
    out = capsys.readouterr().out
    assert "| model | architecture | seeds | accuracy | F1 | AUC |" in out
    for ext in ("png", "svg", "md"):
        assert os.path.getsize(f"{prefix}.{ext}") > 0
    assert "| mlp | [4] | 2 |" in open(f"{prefix}.md").read()
    assert cli(["plot", "--results", results, "--out", prefix]) == 0       # its own outputs: replaced
    capsys.readouterr()
    figs = tmp_path / "figs"
    (figs / "README.md").write_text("# my notes\n")
    (figs / "photo.png").write_bytes(b"mine")
    for mine, named in ((figs / "README", figs / "README.md"), (figs / "photo", figs / "photo.png")):
        assert cli(["plot", "--results", results, "--out", str(mine)]) == 2
        assert capsys.readouterr().err == (f"minidl plot: error: --out {mine}: {named} is there and was not "
                                           f"written by minidl plot; give another --out, or move it away (nothing "
                                           f"was written)\n")
    assert (figs / "README.md").read_text() == "# my notes\n" and (figs / "photo.png").read_bytes() == b"mine"
    assert sorted(os.listdir(figs)) == ["README.md", "mlp.md", "mlp.png", "mlp.svg", "photo.png"]

    assert cli(["sweep", "--models", "gru", "--hidden", "[8,4]", "--results", results]) == 2
    assert "only the MLP scorers" in capsys.readouterr().err
    assert cli(["sweep", "--epochs", "2", "--set", "epochs=3", "--results", results]) == 2
    assert "both as --epochs and with --set" in capsys.readouterr().err
    assert cli(["plot", "--results", str(tmp_path / "none.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("minidl plot: error: no sweep results at")


@pytest.mark.parametrize("setting, message", [
    ("test_curve=off", "--test-curve must be true or false (JSON: true, false), got 'off'"),   # it switched it on
    ("bucket=False", "--bucket must be true or false (JSON: true, false), got 'False'"),
    ('text_column=["a","b"]', "--text-column must be text, got ['a', 'b']"),
])
def test_a_set_value_of_the_wrong_kind_is_one_line_before_any_job_runs(tmp_path, capsys, setting, message):
    results = tmp_path / "results.jsonl"
    assert cli(["sweep", "--models", "mlp", "--hidden", "8", "--set", setting, "--results", str(results)]) == 2
    assert capsys.readouterr() == ("", f"minidl sweep: error: mlp, hidden 8: {message}\n")
    assert not results.exists()


def test_a_setting_no_job_could_train_with_is_one_line_before_any_job_runs(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    assert cli(["sweep", "--models", "rnn", "--hidden", "8", "--set", "rnn:dropout=2", "--results", str(results)]) == 2
    assert capsys.readouterr() == ("", "minidl sweep: error: rnn, hidden 8: --dropout must lie in [0, 1), got 2\n")
    assert cli(["sweep", "--seeds", "0,a", "--results", str(results)]) == 2
    assert "cannot read seeds '0,a'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        cli(["sweep", "--threads", "0", "--results", str(results)])
    assert stop.value.code == 2
    assert capsys.readouterr().err.endswith("minidl sweep: error: argument --threads: must be a whole number >= 1, "
                                            "got 0\n")
    assert not results.exists()
    tiny = tmp_path / "tiny.csv"      # too small to train on: it was one failed row per job
    tiny.write_text("text,label\ngood,pos\nbad,neg\n")
    assert cli(["sweep", "--data", str(tiny), "--models", "gru", "--hidden", "4", "--seeds", "0,1", "--results",
                str(results)]) == 2
    assert capsys.readouterr().err.startswith(f"minidl sweep: error: {tiny}: only 2 rows with a text")
    assert not results.exists()
    other = tmp_path / "columns.csv"  # the message said to pass --text-column / --label-column, which sweep lacked
    other.write_text("review,sentiment\n" + "".join(f"film {i} good,pos\nfilm {i} bad,neg\n" for i in range(20)))
    assert cli(["sweep", "--data", str(other), "--models", "gru", "--results", str(results)]) == 2
    assert "(--text-column / --label-column)" in capsys.readouterr().err
    assert cli(["sweep", "--data", str(other), "--text-column", "review", "--label-column", "sentiment", "--models",
                "mlp", "--hidden", "[4]", "--seeds", "0", "--epochs", "1", "--workers", "0", "--results",
                str(results)]) == 0
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert (record["config"]["text_column"], record["config"]["label_column"]) == ("review", "sentiment")
    results.unlink()
    capsys.readouterr()

    table = tmp_path / "reviews.csv"
    table.write_bytes(b"text,label\ngood,pos\nbad,neg")           # no newline at the end
    with pytest.raises(ValueError, match=r"is not a sweep results file \(line 1"):
        cli(["sweep", "--models", "mlp", "--hidden", "[4]", "--seeds", "0", "--results", str(table)])
    assert table.read_bytes() == b"text,label\ngood,pos\nbad,neg"  # untouched
    # a file of one line without a newline was taken for a sweep's crashed write: the note was cut
    # away, the one-line JSON of a train or spirals run kept with records appended after it
    for name, text in (("notes.txt", "my notes, line one"), ("results.json", json.dumps(
            {"config": tiny_grid()[0], "test": {"accuracy": 0.5}, "history": []}))):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=r"is not a sweep results file \(line 1"):
            cli(["sweep", "--models", "mlp", "--hidden", "[4]", "--seeds", "0", "--results", str(tmp_path / name)])
        assert (tmp_path / name).read_text() == text
    capsys.readouterr()
    assert cli(["sweep", "--models", "mlp", "--hidden", "[4]", "--seeds", "0", "--results", "new/"]) == 2
    assert "--results new/ names a folder; give the path of a file" in capsys.readouterr().err   # trained, then Errno 21


def test_a_sweep_whose_first_line_was_cut_short_by_a_crash_runs_on(tmp_path):
    path = tmp_path / "results.jsonl"
    line = json.dumps(run_sweep(tiny_grid()[:1], tmp_path / "other.jsonl", executor=InlineExecutor(), log=quiet)[0])
    path.write_text(line[: len(line) // 2])
    with pytest.warns(UserWarning, match="truncated last line"):
        assert load_results(path) == []


def test_a_job_runs_again_when_a_file_it_read_has_changed_since(tmp_path):
    """A record keeps the SHA-256 of the files its run read (here the vectors; a teacher
    checkpoint alike): the same settings on other bytes (vectors rebuilt, a teacher trained
    again) are not a finished job. A record from before records kept them stays finished."""
    import hashlib

    from minidl.data.synthetic import make_reviews

    vectors = tmp_path / "vectors.txt"
    words = sorted({w for text in make_reviews(50).texts for w in text.split()})[:20]
    write = lambda scale: vectors.write_text("".join(f"{w} " + " ".join(f"{scale * (i + j) / 100:.3f}" for j in range(8))
                                                     + "\n" for i, w in enumerate(words)))
    write(1)
    path = tmp_path / "r.jsonl"
    configs = grid(["gru"], [4], [0], embeddings=str(vectors), **TINY)
    (first,) = run_sweep(configs, path, executor=Serial(), log=quiet)
    assert first["inputs"] == {str(vectors): hashlib.sha256(vectors.read_bytes()).hexdigest()}

    again, logged = Serial(), []
    run_sweep(configs, path, executor=again, log=logged.append)
    assert again.submitted == [] and "1 already done" in logged[0]

    write(2)                                                 # the same path, other vectors
    third, logged = Serial(), []
    (record,) = run_sweep(configs, path, executor=third, log=logged.append)
    assert third.submitted == configs
    assert logged[0].endswith(f"0 already done in {path}, 1 to run (1 of them ran on files that have changed or "
                              f"gone since: {vectors})")
    assert record["inputs"][str(vectors)] == hashlib.sha256(vectors.read_bytes()).hexdigest() != first["inputs"][str(vectors)]
    assert [r["inputs"] for r in load_results(path)] == [record["inputs"]]    # the new line replaces the old

    older = {k: v for k, v in record.items() if k != "inputs"}   # written before records kept their inputs
    path.write_text(json.dumps(older) + "\n")
    write(3)
    fourth = Serial()
    run_sweep(configs, path, executor=fourth, log=quiet)
    assert fourth.submitted == []


def test_the_files_a_run_reads_are_its_vectors_checkpoint_teachers_and_own_data():
    config = {"embeddings": "v.txt", "teacher": "nbsvm, runs/t/best.npz", "data": "train.csv",
              "validation_data": None, "test_data": "test.csv"}
    assert sweep.input_files(config) == ["runs/t/best.npz", "test.csv", "train.csv", "v.txt"]
    assert sweep.input_files({"data": "imdb", "teacher": "nbsvm"}) == []


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_ctrl_c_ends_the_workers_without_running_the_next_job(tmp_path):
    """A terminal's Ctrl-C reaches the worker processes too; as a KeyboardInterrupt it ended only the
    job at hand, and the worker then ran the job queued next to its end before the sweep could stop."""
    command = [sys.executable, "-m", "minidl", "sweep", "--models", "gru", "--hidden", "8", "--seeds", "0,1",
               "--epochs", "40", "--workers", "1", "--results", str(tmp_path / "r.jsonl"), "--set", "patience=null",
               "--set", "train_limit=200"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    while not any("step" in line for line in seen[-1:]):   # seed 0 is training
        seen.append(process.stderr.readline())
        assert seen[-1], "".join(seen)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130 and "interrupted" in out, out + err
    assert "seed=1" not in "".join(seen) + err, err     # the job queued next never ran

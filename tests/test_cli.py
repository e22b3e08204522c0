"""The command line: the demo sweep and the benchmark run end to end on tiny settings."""
import argparse
import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

from minidl.bench import mlp
from minidl.cli import build_parser, main


def test_spirals_writes_results_and_plot(tmp_path, capsys):
    main(["spirals", "--out", str(tmp_path), "--hidden", "2,8", "--seeds", "0", "--steps", "30"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row["hidden"] for row in results["summary"]] == [2, 8]
    assert all(len(run["losses"]) == 30 for run in results["runs"])
    assert results["runs"][0]["losses"][-1] < results["runs"][0]["losses"][0]  # it learns
    assert (tmp_path / "spirals.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "hidden" in capsys.readouterr().out


def test_spirals_std_over_seeds_is_the_sample_one_as_in_sweep():
    """spirals printed the population std (0.015 for 0.625 and 0.595), sweep, plot and demo the sample one."""
    from minidl.experiments.spirals import summarise

    runs = [{"hidden": 2, "train_accuracy": a, "test_accuracy": a} for a in (0.625, 0.595)]
    row, = summarise(runs + [{"hidden": 8, "train_accuracy": 0.9, "test_accuracy": 0.8}])[:1]
    assert row["test_accuracy"] == pytest.approx(0.61) and row["test_accuracy_std"] == pytest.approx(0.03 / 2 ** 0.5)
    assert summarise(runs[:1])[0]["train_accuracy_std"] == 0.0       # one seed: no spread, as in sweep


def test_bench_times_all_three_implementations():
    times = mlp.run(batch_size=8, sizes=(16, 8, 3), rounds=1, steps=2)
    assert set(times) == {"minidl", "pytorch", "numpy by hand"}
    assert all(t > 0 for t in times.values())
    assert "throughput vs PyTorch" in mlp.report(times)


def test_bench_steps_agree_with_each_other():
    """The three contenders must do the same update, or the ratio would compare different work."""
    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((8, 16)).astype(np.float32), rng.integers(0, 3, 8))
    step, model = mlp._minidl_step(batch, (16, 8, 3), 0.1, 0.9, 0, "cpu")
    torch_step = mlp._torch_step(batch, model, 0.1, 0.9)
    numpy_step = mlp._numpy_step(batch, model, 0.1, 0.9)
    start = [w.copy() for w in mlp._weights(model)]
    for _ in range(3):
        step(), torch_step(), numpy_step()
    ours = mlp._weights(model)
    assert not np.allclose(ours[0], start[0])  # the weights did move
    for other in (torch_step.weights(), numpy_step.weights()):
        for a, b in zip(ours, other):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_train_eval_explain_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "softmax", "--hidden", "[8,4]", "--embed-dim", "8", "--epochs", "1",
                 "--train-limit", "400", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["hidden"] == [8, 4] and 0 <= results["test"]["accuracy"] <= 1
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == results["test"]["accuracy"]
    assert main(["explain", "the plot was not good", "--checkpoint", str(out / "best.npz")]) == 0
    printed = capsys.readouterr().out
    assert "prediction:" in printed and "weight" in printed and "not" in printed
    # a column of the synthetic data (it has none) changed nothing, silently
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--label-column", "stars"]) == 1
    assert capsys.readouterr().err == ("minidl eval: --label-column names a column of a table (--data FILE); the "
                                       "synthetic data has none\n")


def test_train_json_prints_only_json_with_embeddings_too(tmp_path, capsys):
    """The vectors file's notes (words read, coverage) go to stderr, not into --json's output."""
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 0.1 0.2 0.3\nbad -0.1 -0.2 -0.3\nmovie 0.0 0.1 0.0\n")
    assert main(["train", "--model", "gru", "--hidden", "4", "--epochs", "1", "--train-limit", "200", "--embeddings",
                 str(vectors), "--out", str(tmp_path / "run"), "--quiet", "--json"]) == 0
    printed = capsys.readouterr()
    assert 0 <= json.loads(printed.out)["test"]["accuracy"] <= 1
    assert "3-d vectors" in printed.err and "found" in printed.err


def test_eval_int8_reports_both_models(tmp_path, capsys, monkeypatch):
    """``eval --int8`` scores the checkpoint and its int8 copy on the same reviews: both sets of
    metrics, reviews/s, the speed-up and the accuracy change."""
    out = tmp_path / "run"
    assert main(["train", "--model", "transformer", "--hidden", "8", "--embed-dim", "8", "--epochs", "1",
                 "--train-limit", "200", "--out", str(out), "--quiet", "--device", "torch"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--int8", "--limit", "50", "--device", "torch",
                 "--json"]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert report["float32"]["n"] == report["int8"]["n"] == 50
    # a bar of the reviews scored, on stderr (IMDB's test split was about 40 s of silence)
    assert "scoring (float32)" in printed.err and "scoring (int8)" in printed.err and "/50 [" in printed.err
    assert report["int8_speedup"] > 0 and report["int8"]["reviews_per_s"] > 0
    change = 100 * (report["int8"]["accuracy"] - report["float32"]["accuracy"])
    assert abs(report["accuracy_change_points"] - round(change, 2)) < 1e-9
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--int8", "--limit", "50", "--device", "torch"]) == 0
    table = capsys.readouterr().out.splitlines()   # the table without --json ran in no test (coverage)
    assert table[0].endswith(": 50 reviews, float32 and int8 timed in the same run")
    assert table[1].split() == ["model", "accuracy", "f1", "loss", "reviews/s"]
    assert [row.split()[0] for row in table[2:4]] == ["float32", "int8"] and table[4].startswith("int8: ")
    # each model's warm-up shows its bar too: the first bar's set-up (tqdm's import) was timed as float32's
    from minidl.train import trainer

    bars, bar = [], trainer.progress_bar
    monkeypatch.setattr(trainer, "progress_bar", lambda description, *a, **k: bars.append(description) or bar(
        description, *a, **k))
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--int8", "--limit", "50", "--json"]) == 0
    assert bars == ["scoring (float32)"] * 2 + ["scoring (int8)"] * 2
    assert _refused_by_the_parser(["eval", "--checkpoint", str(out / "best.npz"), "--int8", "--limit", "0"],
                                  capsys) == "minidl eval: error: argument --limit: must be a whole number >= 1, got 0"


def test_explain_reports_bad_text_clearly(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--model", "gru", "--hidden", "4", "--embed-dim", "4", "--epochs", "1", "--train-limit", "100",
          "--out", str(out), "--quiet"])
    capsys.readouterr()
    assert main(["explain", "<br /> 1 2 3 !", "--checkpoint", str(out / "best.npz")]) == 1
    assert "empty after cleaning" in capsys.readouterr().err
    assert main(["explain", "zzyzx qwghlm", "--checkpoint", str(out / "best.npz")]) == 1
    assert "none of the words" in capsys.readouterr().err
    assert main(["explain", "a good film", "zzyzx", "--checkpoint", str(out / "best.npz")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""      # the first text was explained before the second was refused
    assert "text 2 of 2, 'zzyzx': none of the words" in captured.err   # which one went unsaid
    assert main(["explain", "good", "--checkpoint", str(tmp_path / "missing.npz")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_every_command_runs_through_one_mechanism():
    """Each command and sub-command sets ``run`` on its own parser (no dispatch chain in main),
    so ``main`` is one call whose result is the command's exit code."""
    def leaves(parser, path=()):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
            return
        for name, sub in subs[0].choices.items():
            yield from leaves(sub, path + (name,))

    commands = list(leaves(build_parser()))
    assert len(commands) > 20
    missing = [" ".join(path) for path, parser in commands if not callable(parser.get_default("run"))]
    assert not missing, f"commands without run: {missing}"


def test_every_option_has_help_that_shows_its_default(monkeypatch):
    """`minidl <command> --help` explains every option and shows its default: argparse's value
    where there is one, never "(default: None)" and never twice."""
    monkeypatch.setenv("COLUMNS", "200")   # the same wrapping everywhere; whitespace is compared loosely anyway

    def options(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from options(sub, path + [name])
            elif action.help is not argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                yield " ".join(path), parser, action

    found = list(options(build_parser(), ["minidl"]))
    assert len(found) > 150
    problems = []
    for command, parser, action in found:
        name = f"{command} {'/'.join(action.option_strings) or action.dest}"
        shown = " ".join(parser._get_formatter()._format_action(action).split())
        if not (action.help or "").strip():
            problems.append(f"{name}: no help text")
        if "(default: None)" in shown or shown.count("(default:") > 1:
            problems.append(f"{name}: {shown!r}")
        default = action.default
        if default is not None and default is not False and not (isinstance(default, (list, dict)) and not default):
            if f"(default: {default})" not in shown:
                problems.append(f"{name}: the default {default!r} is not shown in {shown!r}")
            if shown not in " ".join(parser.format_help().split()):
                problems.append(f"{name}: not in `{command} --help`")
    assert not problems, "\n".join(problems)


def test_a_missing_file_is_one_line_naming_it(tmp_path, capsys):
    missing = str(tmp_path / "no-such-vectors.txt")
    assert main(["vectors", "neighbours", missing, "good"]) == 1
    assert capsys.readouterr().err == f"minidl vectors neighbours: no such file or folder: {missing!r}; check the path\n"
    assert main(["vectors", "neighbours", str(tmp_path), "good"]) == 1      # was "[Errno 21] Is a directory: ..."
    folder = str(tmp_path)
    assert capsys.readouterr().err == f"minidl vectors neighbours: {folder!r} is a folder; give the path of a file\n"


def test_an_out_folder_that_cannot_be_made_is_refused_before_any_training(tmp_path, capsys):
    """probe used to train for a minute and then fail to write; demo and spirals said 'no such file'."""
    (tmp_path / "notes.txt").write_text("mine")
    for command in ("probe", "demo", "spirals"):
        out = str(tmp_path / "notes.txt" / "run")
        assert main([command, "--out", out]) == 1
        assert capsys.readouterr().err == (f"minidl {command}: --out {out}: {tmp_path / 'notes.txt'} is a file, so no "
                                           f"folder can be made there; choose another path\n")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_bad_setting_or_file_of_the_user_is_one_line_without_the_debug_hint(tmp_path, capsys):
    """'(--debug shows where)' is for unexpected errors; a vector size of 0, a table without a known
    extension and a broken vectors file are the user's input, said in one line with the fix."""
    assert main(["vectors", "build", "--out", str(tmp_path / "v.txt"), "--dim", "0"]) == 1
    assert capsys.readouterr().err == "minidl vectors build: dim=0 is not allowed; pass a whole number >= 1\n"
    table = tmp_path / "reviews.dat"
    table.write_text("text,label\ngood,pos\n")
    assert main(["train", "--data", str(table)]) == 1
    assert capsys.readouterr().err == (f"minidl train: cannot tell the format of {table} from its extension '.dat': "
                                       f"name it .csv, .tsv, .tab, .jsonl, .ndjson, .json (or, from Python, pass "
                                       f"format=)\n")
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 0.1 0.2\nbad 0.3\n")
    assert main(["vectors", "neighbours", str(vectors), "good"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"minidl vectors neighbours: {vectors}, line 2: ") and err.count("\n") == 1
    assert "--debug" not in err
    assert not (tmp_path / "v.txt").exists()


def test_a_commands_words_may_follow_its_options(tmp_path, capsys):
    """`vectors neighbours FILE -k 1 good` was "unrecognized arguments: good" (argparse takes the
    words of a list only before the options); an unknown option is still refused."""
    vectors = tmp_path / "v.txt"
    vectors.write_text("good 0.1 0.2\nbad 0.3 0.1\nfine 0.2 0.2\n")
    assert main(["vectors", "neighbours", str(vectors), "-k", "1", "good", "bad"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["good: fine (0.95)", "bad: fine (0.89)"]
    with pytest.raises(SystemExit) as stop:
        main(["vectors", "neighbours", str(vectors), "-k", "1", "good", "--bogus"])
    assert stop.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_an_unknown_option_is_the_commands_error_in_one_line(capsys):
    """Not the top parser's usage listing every command: the command's own name; and one line, not after the
    command's usage (train's is 28 lines), saying where its options are listed."""
    for argv, name, unknown in ((["curves", "--results", "r.jsonl"], "curves", "--results"),
                                (["vectors", "build", "--out", "v.txt", "--foo"], "vectors build", "--foo")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err == f"minidl {name}: error: unrecognized arguments: {unknown} (see minidl {name} --help)\n"
    with pytest.raises(SystemExit):
        main(["eval"])
    assert capsys.readouterr().err == ("minidl eval: error: the following arguments are required: --checkpoint (see "
                                       "minidl eval --help)\n")
    for argv, commands in ((["compress"], "prune, qat, lowrank-sweep, seeds"), ([], "demo, spirals, train, ")):
        with pytest.raises(SystemExit):   # ("required: what": a name never typed, and no list of the commands)
            main(argv)
        assert f"error: give a command: {commands}" in capsys.readouterr().err


def test_a_value_an_option_refuses_is_one_line_without_the_usage(capsys):
    """--out "" or --epochs abc printed train's 28-line usage before the one line (the README says one line)."""
    for argv, words in ((["train", "--out", ""], "argument --out: an empty path"),
                        (["train", "--epochs", "abc"], "argument --epochs"), (["sweep", "--epochs", "0"], "--epochs")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and len(err.splitlines()) == 1 and words in err, err


def test_ctrl_c_while_the_commands_load_is_one_line(capsys, monkeypatch):
    """In the first half-second (build_parser imports every command's module) it was a traceback."""
    from minidl import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["train"]) == 130 and capsys.readouterr().err == "minidl: interrupted\n"


def test_ctrl_c_while_the_cli_module_loads_is_one_line(capsys, monkeypatch):
    """The minidl script imported minidl.cli (about 100 modules, 0.2 s) before main could catch anything."""
    import types

    from minidl_script import main

    def interrupted(name):
        raise KeyboardInterrupt

    loading = types.ModuleType("minidl.cli")
    loading.__getattr__ = interrupted
    monkeypatch.setitem(sys.modules, "minidl.cli", loading)
    assert main(["--help"]) == 130 and capsys.readouterr().err == "minidl: interrupted\n"


def test_a_device_this_machine_lacks_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    """--device cuda without a GPU was a traceback in 14 commands (train alone said it in words),
    some of them after loading their data."""
    import torch

    from minidl import backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(backend, "_TORCH_BACKENDS", {})
    missing = str(tmp_path / "missing.npz")   # the device is refused before the checkpoint is read
    for command in (["eval", "--checkpoint", missing], ["explain", "good", "--checkpoint", missing],
                    ["spirals", "--out", str(tmp_path / "s")], ["fill-mask", "a [MASK]", "--teacher", missing],
                    ["mlm", "evaluate", "--teacher", missing, "--student", missing]):
        assert main([*command, "--device", "cuda"]) == 1, command
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "PyTorch sees no CUDA GPU" in err[0] and err[0].startswith("minidl "), err
    assert main(["eval", "--checkpoint", missing, "--device", "gpu"]) == 1
    assert "unknown device 'gpu'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_ctrl_c_is_one_line_with_the_way_back(monkeypatch, capsys, tmp_path):
    """It promised "--resume goes on from the last checkpoint" also before the first, and without --out."""
    import minidl.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(minidl.cli, "fit", interrupted)
    out = tmp_path / "run"
    for argv, said in ((["--out", str(out)], "nothing was saved yet"),
                       ([], "nothing was saved yet (give --out to keep checkpoints)")):
        assert main(["train", *argv]) == 130
        assert capsys.readouterr().err == f"minidl train: interrupted; {said}\n"
    monkeypatch.undo()
    assert main(["train", "--model", "mlp", "--epochs", "1", "--train-limit", "100", "--quiet", "--out", str(out)]) == 0
    monkeypatch.setattr(minidl.cli, "fit", interrupted)
    argv = ["train", "--model", "mlp", "--epochs", "1", "--train-limit", "100", "--out", str(out), "--resume"]
    assert main(argv) == 130
    assert capsys.readouterr().err == f"minidl train: interrupted; --resume goes on from {out / 'last.npz'}\n"
    # the checkpoint of a run being replaced is not this run's way back (it named the replaced run's last.npz)
    assert main(["train", "--model", "rnn", "--out", str(out), "--overwrite"]) == 130
    assert capsys.readouterr().err == "minidl train: interrupted; nothing was saved yet\n"


def test_an_overwrite_replaces_the_old_results_with_its_first_checkpoint(tmp_path, monkeypatch, capsys):
    """The old run's results.json stayed beside the new run's checkpoints (mlp's numbers, rnn's best.npz) when
    the new run stopped early; a run refused before its first checkpoint changes nothing."""
    import os

    import minidl.cli
    from minidl.train import Callback

    out = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--train-limit", "100", "--quiet", "--out", str(out)]) == 0
    (tmp_path / "tiny.csv").write_text("text,label\nhello world,a\ngood film,b\nbad film,a\n")
    assert main(["train", "--data", str(tmp_path / "tiny.csv"), "--quiet", "--out", str(out), "--overwrite"]) == 1
    assert sorted(os.listdir(out)) == ["best.npz", "last.npz", "results.json"]

    class StopAfterTheFirstSave(Callback):
        def on_save(self, path, kind):
            if kind == "last":
                raise KeyboardInterrupt

    fit = minidl.cli.fit
    monkeypatch.setattr(minidl.cli, "fit", lambda config, callbacks=(), **kwargs: fit(
        config, callbacks=[*callbacks, StopAfterTheFirstSave()], **kwargs))
    assert main(["train", "--model", "rnn", "--quiet", "--out", str(out), "--overwrite"]) == 130
    assert sorted(os.listdir(out)) == ["best.npz", "last.npz"]
    assert capsys.readouterr().err.endswith(f"interrupted; --resume goes on from {out / 'last.npz'}\n")


def test_sizes_past_the_memory_are_one_line(tmp_path, capsys):
    """--hidden 99999999 was a traceback of NumPy's allocator (Unable to allocate 55.9 GiB ...)."""
    out = tmp_path / "r"
    assert main(["train", "--model", "rnn", "--hidden", "999999999", "--epochs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minidl train: out of memory: Unable to allocate ") and len(err.splitlines()) == 1, err
    assert err.endswith("; give smaller sizes (e.g. --hidden, --batch-size)\n") and not out.exists()


@pytest.mark.parametrize("what, sizes", [("transformer", " (e.g. --shape, --batch, --vocab, --lengths)"),
                                         ("mlp", "")])
def test_the_out_of_memory_hint_names_only_options_the_command_has(monkeypatch, capsys, what, sizes):
    """bench transformer --vocab 2000000000 was told to give smaller --hidden and --batch-size, which it has not."""
    def too_big(args):
        raise MemoryError("Unable to allocate 954. GiB")
    monkeypatch.setattr(importlib.import_module(f"minidl.bench.{what}"), "main", too_big)
    assert main(["bench", what]) == 1
    said = capsys.readouterr().err
    assert said == f"minidl bench {what}: out of memory: Unable to allocate 954. GiB; give smaller sizes{sizes}\n"


def test_python_dash_m_minidl_is_the_command():
    done = subprocess.run([sys.executable, "-m", "minidl", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: minidl")


def test_a_reader_that_stops_early_is_no_error():
    """`minidl eval ... | head -1` ended with "minidl eval: [Errno 32] Broken pipe", exit 1."""
    process = subprocess.Popen([sys.executable, "-m", "minidl", "assignment", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()                          # before the command prints: every write finds no reader
    assert process.stderr.read() == b"" and process.wait(timeout=60) == 141


def test_a_file_the_user_wrote_is_never_replaced(tmp_path, capsys, monkeypatch):
    """These commands replaced any file at their output path (a text file became a zip, a train run's
    results.json became spirals'); each now refuses, in one line before any work, a file it did
    not write itself, and still replaces its own output."""
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "no-reviews-here"))
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text('{"config": {}}')
    for command in (["mlm", "pretrain", "--out", str(notes)],
                    ["mlm", "quantize", "--model", "m.npz", "--out", str(notes)],
                    ["mlm", "evaluate", "--teacher", "t.npz", "--student", "s.npz", "--out", str(notes)],
                    ["mlm", "finetune", "--student", "s.npz", "--out", str(notes)],
                    ["grade", str(tmp_path), "--json", str(notes)],
                    ["grade", "--submissions", str(tmp_path), "--csv", str(notes)],
                    ["spirals", "--out", str(tmp_path / "run")]):
        assert main(command) in (1, 2), command
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "is there and was not written by minidl" in err[0], (command, err)
    # vectors build cannot tell its file from a GloVe file of the user's (it replaced one): any file needs --overwrite
    assert main(["vectors", "build", "--out", str(notes)]) == 1
    assert capsys.readouterr().err == (f"minidl vectors build: --out {notes} is there; pass --overwrite to replace "
                                       f"it, or give another path\n")
    assert notes.read_text() == "my notes\n" and (tmp_path / "run" / "results.json").read_text() == '{"config": {}}'
    assert main(["spirals", "--out", str(tmp_path / "s"), "--hidden", "2", "--seeds", "0", "--steps", "2"]) == 0
    assert main(["spirals", "--out", str(tmp_path / "s"), "--hidden", "2", "--seeds", "0", "--steps", "2"]) == 0


def test_outputs_that_cannot_be_written_are_refused_before_the_work(tmp_path, capsys):
    """sweep --results and mlm finetune / evaluate --out in a folder no file can be written to used to
    be found after the first job, or the fine-tuning."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = str(blocker / "x.json")
    for command in (["sweep", "--models", "gru", "--hidden", "4", "--seeds", "0", "--results", out],
                    ["mlm", "finetune", "--student", "s.npz", "--out", out],
                    ["mlm", "evaluate", "--teacher", "t.npz", "--student", "s.npz", "--out", out]):
        assert main(command) in (1, 2), command
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "is a file, so no folder can be made there" in err[0], (command, err)


def _refused_by_the_parser(argv, capsys):
    """argparse's refusal of ``argv``, before the command runs: exit 2; its error line."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("argv, option, got", [
    (["compress", "prune", "--teacher", "T", "--out", "o", "--amount", "0.5", "--test-limit", "-1"], "--test-limit",
     ">= 1, got -1"),
    (["compress-report", "--teacher", "T", "--out", "o", "--test-limit", "0"], "--test-limit", ">= 1, got 0"),
    (["mlm", "evaluate", "--teacher", "t", "--student", "s", "--cases", "-5"], "--cases", ">= 1, got -5"),
    (["mlm", "finetune", "--student", "s", "--out", "o", "--test-limit", "-3"], "--test-limit", ">= 1, got -3"),
    (["mlm", "finetune", "--student", "s", "--out", "o", "--train-limit", "0"], "--train-limit", ">= 1, got 0"),
    (["mlm", "finetune", "--student", "s", "--out", "o", "--epochs", "0"], "--epochs", ">= 1, got 0"),
    (["mlm", "pretrain", "--out", "o.npz", "--steps", "0"], "--steps", ">= 1, got 0"),
    (["vectors", "eval", "v.txt", "--steps", "0"], "--steps", ">= 1, got 0"),
    (["vectors", "neighbours", "v.txt", "good", "-k", "-2"], "-k", ">= 1, got -2"),
    (["fill-mask", "[MASK]", "--teacher", "t", "-k", "0"], "-k", ">= 1, got 0"),
    (["spirals", "--steps", "-5"], "--steps", ">= 1, got -5"),
    (["sweep", "--workers", "-1"], "--workers", ">= 0, got -1"),
    (["bench", "serve", "--requests", "0"], "--requests", ">= 1, got 0"),
    (["probe", "--seed", "x"], "--seed", ">= 0, got x"),
])
def test_a_count_limit_or_k_below_its_least_is_refused_before_any_work(argv, option, got, capsys):
    """They used to run: a negative limit counted from the end (999 of 1,000 test reviews for
    --test-limit -1), 0 or fewer steps, epochs or cases trained or scored nothing, or failed late."""
    line = _refused_by_the_parser(argv, capsys)
    assert line.endswith(f": error: argument {option}: must be a whole number {got}")


@pytest.mark.parametrize("argv, error", [
    (["mlm", "pretrain", "--out", "o.npz", "--time-limit", "-1"], "argument --time-limit: must be a number > 0, "
                                                                 "finite, got -1"),
    (["grade", "copy", "--timeout", "0"], "argument --timeout: must be a number > 0, finite, got 0"),
    (["mlm", "finetune", "--student", "s", "--out", "o", "--lr", "inf"], "argument --lr: must be a number > 0, "
                                                                        "finite, got inf"),
    (["spirals", "--seeds", ""], "argument --seeds: give whole numbers >= 0, comma-separated, got ''"),
    (["spirals", "--hidden", "abc"], "argument --hidden: give whole numbers >= 1, comma-separated, got 'abc'"),
    (["spirals", "--hidden", "0,8"], "argument --hidden: give whole numbers >= 1, comma-separated, got '0,8'"),
    (["compress", "seeds", "--teacher", "t", "--out", "o", "--seeds", "0,1,0"],
     "argument --seeds: 0 given more than once in '0,1,0'; give each once"),
    (["compress", "lowrank-sweep", "--teacher", "t", "--out", "o", "--ranks", "2,,4"],
     "argument --ranks: an empty item in '2,,4'; remove the extra comma or give the missing value"),   # it ran 2, 4
    (["spirals", "--hidden", "16,32,"], "argument --hidden: an empty item in '16,32,'; remove the extra comma or give "
                                        "the missing value"),
    (["train", "--hidden", ""], "argument --hidden: give a whole number like 64, or for mlp and softmax a list "
                                "like [64,32,16], got ''"),
    (["probe", "--models", ""], "argument --models: give comma-separated models of rnn, gru, mlp, softmax, "
                                "attention, transformer, got ''"),
    (["probe", "--models", "mlp,gru,mlp"], "argument --models: mlp given more than once in 'mlp,gru,mlp'; give "
                                           "each once"),     # it trained mlp twice and kept one
    # "invalid <lambda> value: 'abc'", "invalid _number_or_none value: '1e-x'": argparse named the type function
    (["train", "--eval-every", "abc"], "argument --eval-every: give a whole number or none, got 'abc'"),
    (["train", "--train-limit", "1e3"], "argument --train-limit: give a whole number or none, got '1e3'"),
    (["train", "--embedding-lr", "1e-x"], "argument --embedding-lr: give a number or none, got '1e-x'"),
])
def test_a_bad_number_list_or_name_is_one_line_naming_the_option(argv, error, capsys):
    assert _refused_by_the_parser(argv, capsys).endswith(f": error: {error}")


def test_probe_with_no_models_writes_nothing(tmp_path, capsys):
    """An empty --models used to train nothing, leave an empty probe.json and end in StopIteration."""
    _refused_by_the_parser(["probe", "--models", ",", "--out", str(tmp_path / "pr")], capsys)
    assert not (tmp_path / "pr").exists()


def test_an_infinite_learning_rate_or_a_negative_seed_is_refused_before_training(capsys):
    """--lr nan was refused, --lr inf trained into a NaN loss; --seed -1 failed in NumPy."""
    assert main(["train", "--lr", "inf", "--quiet"]) == 1
    assert capsys.readouterr().err == "minidl train: --lr must be a number >= 0, finite, got inf\n"
    assert main(["train", "--seed", "-1", "--quiet"]) == 1
    assert capsys.readouterr().err == "minidl train: --seed must be a whole number >= 0, got -1\n"


def test_clip_norm_takes_any_number_and_refuses_inf_in_words(capsys):
    """--clip-norm inf and 1e-3 (a number it should take) were "invalid <lambda> value": no "." read as a whole one."""
    assert main(["train", "--clip-norm", "inf", "--quiet"]) == 1
    assert capsys.readouterr().err == "minidl train: --clip-norm must be a number > 0 (or none), finite, got inf\n"
    assert build_parser().parse_args(["train", "--clip-norm", "1e-3"]).clip_norm == 1e-3


@pytest.mark.parametrize("options, words", [
    (["--train-limit", "5"], "--validation 0.1 of 5 reviews leaves no validation reviews; raise --validation or "
                             "--train-limit, or set --validation 0"),
    (["--train-limit", "200", "--validation", "0.001"], "--validation 0.001 of 200 reviews leaves no validation"),
    (["--train-limit", "1", "--validation", "0.9"], "--validation 0.9 of 1 reviews leaves no training reviews"),
])
def test_a_validation_share_that_leaves_a_split_empty_is_refused_before_training(options, words, tmp_path, capsys):
    """It used to train, then fail in NumPy: "need at least one array to concatenate"."""
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"), *options]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"minidl train: {words}") and err.count("\n") == 1
    assert not (tmp_path / "run" / "last.npz").exists()


def test_vectors_with_a_nan_are_refused_naming_the_line(tmp_path, capsys):
    """neighbours printed "good (-inf)"; train --embeddings trained into a NaN loss and blamed --lr."""
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 0.1 0.2 0.3\nbad nan 0.1 0.2\nfine 0.3 0.2 1e39\n")
    assert main(["vectors", "neighbours", str(vectors), "good"]) == 1
    assert capsys.readouterr().err == (f"minidl vectors neighbours: {vectors}, line 2: a value is nan, inf or too "
                                       f"large for float32 ('nan 0.1 0.2')\n")
    assert main(["train", "--embeddings", str(vectors), "--embed-dim", "3", "--train-limit", "200", "--quiet"]) == 1
    assert capsys.readouterr().err.startswith(f"minidl train: {vectors}, line 2: a value is nan")


def test_figures_and_tables_of_the_user_beside_an_output_are_never_replaced(tmp_path, capsys, monkeypatch):
    """spirals, probe, demo and the compression commands replaced a figure or table of the same name
    in --out (e.g. a user's spirals.png or results.md) when --out held none of their results;
    assignment gradescope replaced any zip."""
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "no-reviews-here"))
    teacher = tmp_path / "teacher.npz"
    teacher.write_bytes(b"not read: the folder is refused first")
    for folder, figure, command in (("s", "spirals.png", ["spirals"]), ("p", "probe.svg", ["probe"]),
                                    ("d", "sweep.png", ["demo"]),
                                    ("c", "results.md", ["compress", "prune", "--teacher", str(teacher),
                                                         "--amount", "0.5"])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / figure).write_text("mine")
        assert main([*command, "--out", str(tmp_path / folder)]) == 1, command
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"{figure} is there and was not written by minidl" in err[0], (command, err)
        assert (tmp_path / folder / figure).read_text() == "mine"
    (tmp_path / "mine.zip").write_bytes(b"PK\x05\x06" + bytes(18))   # an empty zip
    assert main(["assignment", "gradescope", "compression", "--out", str(tmp_path / "mine.zip")]) == 1
    assert "mine.zip is there and was not written by minidl assignment gradescope" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["train", "--out", ""], "--out"),                                              # trained, then saved nothing
    (["compress", "prune", "--teacher", "t.npz", "--amount", "0.5", "--out", ""], "--out"),   # wrote into "."
    (["sweep", "--models", "mlp", "--hidden", "4", "--seeds", "0", "--results", ""], "--results"),  # after the jobs
    (["data", "download", "--dest", ""], "--dest"),
    (["curves", "a.json", ""], "results"),
    (["grade", ""], "directory"),
    (["grade", "--json", ""], "--json")])
def test_an_empty_path_is_refused_before_any_work(argv, option, capsys, tmp_path, monkeypatch):
    """An unset variable ($OUT) gives "": train saved nothing without a word, compress wrote its rows and
    models into the current folder, and sweep trained every job before it failed to write."""
    monkeypatch.chdir(tmp_path)
    assert _refused_by_the_parser(argv, capsys).endswith(f"error: argument {option}: an empty path; give a file or "
                                                          f"folder")
    assert list(tmp_path.iterdir()) == []


def test_scripts_installed_before_minidl_script_still_run(capsys, monkeypatch):
    """A venv installed before minidl_script.py has a `minidl` that imports minidl.__main__.run: it was an
    ImportError until a reinstall."""
    from minidl.__main__ import run

    monkeypatch.setitem(sys.modules, "minidl_script", None)   # as where the environment does not know the module
    monkeypatch.setattr(sys, "argv", ["minidl", "assignment", "list"])
    assert run() == 0 and "ex2_sentiment" in capsys.readouterr().out


def test_an_error_of_the_grading_tools_is_not_called_an_import_failure(monkeypatch):
    """Any error inside minidl grade was "minidl does not import: KeyError ..., fix it", naming a file and line of the
    grading tools as if the student's code did not import."""
    from minidl_script import main

    grading = importlib.import_module("minidl.assignment.grade")   # (the package's "grade" is the function)

    def broken(args):
        raise KeyError("tasks")

    monkeypatch.setattr(grading, "main", broken)
    with pytest.raises(KeyError):
        main(["grade", "--task", "1"])

"""The compression report end to end on a small transformer teacher of the built-in corpus:
every variant is saved, reloaded from its file into a fresh model and scored; the files
really shrink; low-rank + fine-tuning and int8 keep the teacher's accuracy; a second run
resumes instead of recomputing; the table and both plots are written."""
import importlib
import json
import os

import pytest

from minidl.cli import main
from minidl.compress.report import CompressionReport, format_table, seed_table, write_outputs
from minidl.io import WriteError
from minidl.train import TrainConfig, fit

report_module = importlib.import_module("minidl.compress.report")


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    config = TrainConfig(model="transformer", hidden=32, embed_dim=32, max_length=40,
                         model_options={"num_heads": 2, "num_layers": 2, "d_ff": 64, "max_len": 40},
                         epochs=5, lr=0.003, optimizer="adamw", weight_decay=0.01, patience=None)
    result = fit(config, out=str(out), progress=False, log=lambda *_: None)
    assert result.test["accuracy"] > 0.9, result.test
    return result.checkpoint


@pytest.fixture(scope="module")
def report_rows(teacher_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report"))
    report = CompressionReport(teacher_checkpoint, out, decoder_path=teacher_checkpoint, fine_tune=600,
                               gradual_epochs=1, student_epochs=3, test_limit=400, lr=1e-3, student_lr=3e-3,
                               log=None)
    report.run()
    rows = {r["name"]: r for r in report.measure_speed(reviews=200, repeats=2)}
    write_outputs(list(rows.values()), out)
    return rows, out, report


def test_every_variant_is_measured_from_its_reloaded_file(report_rows):
    rows, out, _ = report_rows
    expected = ["teacher", "teacher + KD pass", "decoder", "student transformer + KD", "student transformer, labels only",
                "student GRU + KD", "student TokenMLP + KD", "per-layer L1 20%", "structured 50% heads+FFN + KD",
                "low-rank 50%, no fine-tune", "int8", "gradual 90% + int8", "int8 QAT + KD", "gradual 90% + QAT",
                "one-shot 20%, embedding included"]
    expected += [f"{kind} {a}%{suffix}" for kind, suffix in (("one-shot", ""), ("one-shot", " + locked FT"),
                                                             ("gradual", " + KD")) for a in (10, 20, 50, 80, 90)
                 if kind != "gradual" or a >= 50]
    expected += [f"low-rank {f}% + KD" for f in (25, 50, 75)]
    assert sorted(rows) == sorted(expected)
    for row in rows.values():
        assert os.path.getsize(row["file"]) / 1e6 == pytest.approx(row["size_mb"])
        assert 0.0 <= row["accuracy"] <= 1.0 and row["reviews_per_s"] > 0
    for name in ("results.md", "accuracy_vs_size.png", "accuracy_vs_speed.png", "results.jsonl"):
        assert os.path.getsize(os.path.join(out, name)) > 0


def test_compressed_files_are_really_smaller(report_rows):
    rows, _, _ = report_rows
    dense = rows["teacher"]["size_mb"]
    assert rows["gradual 90% + KD"]["size_mb"] < dense / 2  # tiny arrays: the npz headers weigh a lot
    removed = {a: rows["teacher"]["nonzeros"] - rows[f"one-shot {a}%"]["nonzeros"] for a in (50, 90)}
    assert removed[90] / removed[50] == pytest.approx(0.9 / 0.5, rel=0.01)   # fractions of the same Linears
    assert rows["int8"]["size_mb"] < 0.5 * dense  # ~0.27 for the weights; headers and norms stay
    assert rows["gradual 90% + int8"]["size_mb"] < rows["int8"]["size_mb"]
    assert rows["low-rank 25% + KD"]["parameters"] < rows["low-rank 75% + KD"]["parameters"] < rows["teacher"]["parameters"]
    assert rows["structured 50% heads+FFN + KD"]["parameters"] < rows["teacher"]["parameters"]
    assert rows["student transformer + KD"]["parameters"] * 4 <= rows["teacher"]["parameters"]


def test_fine_tuned_low_rank_and_int8_keep_the_accuracy(report_rows):
    rows, _, _ = report_rows
    teacher = rows["teacher"]["accuracy"]
    assert rows["int8"]["accuracy"] >= teacher - 0.02
    for fraction in (25, 50, 75):  # the course projects' low-rank model collapsed to chance
        assert rows[f"low-rank {fraction}% + KD"]["accuracy"] >= teacher - 0.05
    assert rows["gradual 50% + KD"]["accuracy"] >= teacher - 0.05
    # the first course project's procedure: 20 % of the Linears, fine-tuned with the mask locked
    assert rows["one-shot 20% + locked FT"]["accuracy"] >= teacher - 0.02
    assert rows["one-shot 90% + locked FT"]["nonzeros"] == rows["one-shot 90%"]["nonzeros"]   # the mask held
    assert rows["int8 QAT + KD"]["accuracy"] >= rows["int8"]["accuracy"] - 0.02
    # QAT keeps every mask locked, the embedding table's too (it is not fake-quantised)
    assert rows["gradual 90% + QAT"]["nonzeros"] <= rows["gradual 90% + KD"]["nonzeros"]
    # which weights each pruning row pruned is in the row (what that does to the Linears: test_prune_scope.py)
    assert rows["one-shot 20%"]["scope"] == "Linears, global"
    assert rows["one-shot 20%, embedding included"]["scope"] == "all, global"


def test_a_second_run_resumes_and_the_table_lists_every_row(report_rows, teacher_checkpoint):
    rows, out, _ = report_rows
    again = CompressionReport(teacher_checkpoint, out, decoder_path=teacher_checkpoint, fine_tune=600,
                              test_limit=400, student_epochs=3, gradual_epochs=1,
                              log=lambda *_: pytest.fail("nothing should be recomputed"))
    assert len(again.run()) == len(rows)
    assert set(again.loaders) == set(rows)  # every row can be loaded again, e.g. to time it
    table = format_table(list(rows.values()))
    assert table.count("\n") == len(rows) + 1 and "| teacher |" in table and "| Linears, per layer |" in table
    with open(os.path.join(out, "results.jsonl")) as f:
        assert len([json.loads(line) for line in f]) == len(rows)


def test_cli_refuses_a_missing_teacher(tmp_path, capsys):
    assert main(["compress-report", "--teacher", str(tmp_path / "nope.npz"), "--out", str(tmp_path)]) == 1
    assert "nope.npz" in capsys.readouterr().err


def test_compress_commands_make_the_rows_the_report_reuses(teacher_checkpoint, tmp_path, capsys):
    """minidl compress prune / qat / lowrank-sweep each write their model file and row(s) into
    --out/results.jsonl (the report then skips them), or the rank sweep's table and plot."""
    out = str(tmp_path / "compress")
    common = ["--teacher", teacher_checkpoint, "--out", out, "--fine-tune-reviews", "200", "--test-limit", "100"]
    assert main(["compress", "prune", *common, "--amount", "0.3", "--fine-tune"]) == 0
    printed = capsys.readouterr().out
    assert "| one-shot 30% + locked FT | Linears, global |" in printed
    kept = [line.split() for line in printed.split("what each weight matrix kept")[1].splitlines()[2:]
            if line.strip() and not line.startswith("total")]   # parameter, size, non-zero, sparsity, [masked]
    masked = [row[0] for row in kept if row[-1] == "yes"]
    assert "embedding.weight" in [row[0] for row in kept] and "embedding.weight" not in masked   # scope "linear"
    assert "encoder.layers.0.feed_forward.3.weight" in masked and len(masked) == len(kept) - 2   # and the positions
    assert main(["compress", "qat", *common]) == 0
    assert "| int8 QAT + KD |" in capsys.readouterr().out
    with open(os.path.join(out, "results.jsonl")) as f:
        rows = {json.loads(line)["name"]: json.loads(line) for line in f}
    assert sorted(rows) == ["int8", "int8 QAT + KD", "one-shot 30% + locked FT", "teacher"]
    assert all(os.path.exists(row["file"]) for row in rows.values())
    again = CompressionReport(teacher_checkpoint, out, fine_tune=200, test_limit=100,
                              log=lambda *_: pytest.fail("rows made by minidl compress are reused"))
    again.qat_rows()
    again.prune_row(0.3, tuned=True)
    again.teacher_row()
    per_layer = CompressionReport(teacher_checkpoint, str(tmp_path / "per_layer"), fine_tune=200, test_limit=100,
                                  log=None)
    name = per_layer.prune_row(0.3, scope="all", per_layer=True)   # its note told of one threshold for all
    assert [row["note"] for row in per_layer.rows if row["name"] == name] == ["no retraining"]

    assert main(["compress", "lowrank-sweep", *common, "--ranks", "2,8", "--no-fine-tune", "--min-size", "256"]) == 0
    printed = capsys.readouterr().out
    assert "rank" in printed and "rank_sweep.png" in printed
    assert "(1 of 2 ranks)" in printed and "(2 of 2 ranks)" in printed   # a line as each rank is done
    with open(os.path.join(out, "rank_sweep.jsonl")) as f:
        assert [json.loads(line)["rank"] for line in f] == [2, 8]
    assert os.path.getsize(os.path.join(out, "rank_sweep.png")) > 0
    assert main(["compress", "prune", *common, "--amount", "1.5"]) == 1
    err = capsys.readouterr().err
    assert "--amount must lie in (0, 1)" in err and "--debug" not in err     # the user's setting, not a bug
    sweep = ["compress", "lowrank-sweep", *common[:3], str(tmp_path / "sweep"), *common[4:], "--ranks", "2",
             "--no-fine-tune", "--min-size", "256"]
    assert main(sweep) == 0 and main(sweep) == 0   # a folder holding a rank sweep alone: refused as foreign before
    (tmp_path / "sweep" / "rank_sweep.jsonl").write_text("my notes\n")
    assert main(sweep) == 1 and "rank_sweep.jsonl is there and was not written by" in capsys.readouterr().err


def test_a_models_folder_of_the_user_in_out_is_refused(teacher_checkpoint, tmp_path):
    """compress prune into a folder holding models/teacher.npz (a training checkpoint of the user's) replaced it
    with the row's bare weights file."""
    (tmp_path / "out" / "models").mkdir(parents=True)
    (tmp_path / "out" / "models" / "teacher.npz").write_bytes(b"mine")
    with pytest.raises(WriteError, match=r"out/models is there and was not written by minidl compress"):
        CompressionReport(teacher_checkpoint, str(tmp_path / "out"), test_limit=50, log=None)
    assert (tmp_path / "out" / "models" / "teacher.npz").read_bytes() == b"mine"


def test_an_interrupted_rank_sweep_keeps_the_ranks_it_finished(teacher_checkpoint, tmp_path, monkeypatch):
    import minidl.compress.report as report_module

    out = tmp_path / "sweep"
    report = CompressionReport(teacher_checkpoint, str(out), fine_tune=200, test_limit=100, log=None)
    evaluate = report_module.evaluate

    def evaluate_until_a_row_is_kept(model, data, **options):
        if (out / "rank_sweep.jsonl").exists():
            raise KeyboardInterrupt   # Ctrl-C during the second rank
        return evaluate(model, data, **options)

    monkeypatch.setattr(report_module, "evaluate", evaluate_until_a_row_is_kept)
    with pytest.raises(KeyboardInterrupt):
        report.rank_sweep([2, 8], fine_tune=False, min_size=256)
    assert [json.loads(line)["rank"] for line in (out / "rank_sweep.jsonl").read_text().splitlines()] == [2]
    # run again: rank 2 is reused, not measured again (a rerun started over), and rank 8 joins it
    evaluated = []
    monkeypatch.setattr(report_module, "evaluate", lambda model, data, **options: evaluated.append(1) or
                        evaluate(model, data, **options))
    assert [row["rank"] for row in report.rank_sweep([2, 8], fine_tune=False, min_size=256)] == [2, 8]
    assert len(evaluated) == 1
    assert [json.loads(line)["rank"] for line in (out / "rank_sweep.jsonl").read_text().splitlines()] == [2, 8]
    # a sweep of other settings in --out was replaced without a word
    with pytest.raises(ValueError, match=r"rank_sweep.jsonl holds a sweep of other settings "
                                         r"\(--min-size 256, now 512\)"):
        report.rank_sweep([4], fine_tune=False, min_size=512)
    assert len((out / "rank_sweep.jsonl").read_text().splitlines()) == 2


def test_compress_seeds_repeats_the_close_rows_under_each_seed(report_rows, teacher_checkpoint, capsys, monkeypatch):
    """Seed 0's rows are the report's own (reused, not recomputed); seed 1's are new, in
    --out/seed1, and differ from seed 0's (other reviews, order, dropout); the table has both.
    The data and the teacher's logits are prepared once for all the seeds."""
    import minidl.compress.report as report_module

    _, out, _ = report_rows
    calls = {"prepare": 0, "logits": 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(report_module, "prepare", counted("prepare", report_module.prepare))
    monkeypatch.setattr(report_module, "teacher_logits_table", counted("logits", report_module.teacher_logits_table))
    args = ["compress", "seeds", "--teacher", teacher_checkpoint, "--out", out, "--fine-tune-reviews", "600",
            "--test-limit", "400", "--seeds", "0,1", "--student-epochs", "3"]   # seed 1 trained 2 epochs beside 3
    assert main(args) == 0
    assert calls == {"prepare": 1, "logits": 1}
    table = capsys.readouterr().out
    names = ["teacher + KD pass", "int8 QAT + KD", "one-shot 20% + locked FT", "low-rank 50% + KD",
             "student transformer + KD"]
    with open(os.path.join(out, "seed1", "results.jsonl")) as f:
        seed1 = {json.loads(line)["name"]: json.loads(line) for line in f}
    assert sorted(seed1) == sorted(names)   # only the seeded rows: no teacher row, no PTQ, no untuned rows
    with open(os.path.join(out, "seeds.md")) as f:
        written = f.read().strip()
    assert written in table   # printed after the rows' progress lines
    for name in names:
        assert f"| {name} | " in written
    assert written.count("\n") == len(names) + 1
    losses = [(report_rows[0][name]["loss"], seed1[name]["loss"]) for name in names]
    assert all(a != b for a, b in losses), losses


def test_seed_table_reads_mean_spread_and_the_controls_difference():
    row = lambda name, accuracy: {"name": name, "accuracy": accuracy}  # noqa: E731
    runs = {0: [row("teacher + KD pass", 0.80), row("int8 QAT + KD", 0.81)],
            1: [row("teacher + KD pass", 0.82), row("int8 QAT + KD", 0.85)]}
    lines = seed_table(runs).splitlines()
    assert lines[0] == "| model | seed 0 | seed 1 | mean | sd | mean - teacher + KD pass |"
    assert lines[2] == "| teacher + KD pass | 0.8000 | 0.8200 | 0.8100 | 0.0141 | +0.0000 |"
    assert lines[3] == "| int8 QAT + KD | 0.8100 | 0.8500 | 0.8300 | 0.0283 | +0.0200 |"


def test_a_resumed_report_rewrites_old_files_in_the_current_format(report_rows, tmp_path):
    """A row whose file predates a format change (here: an undeflated sparse file, as
    save_sparse wrote before it deflated) is saved again, its size taken anew, and it loads
    to the same weights."""
    from minidl.io import read_npz, write_npz

    rows, out, report = report_rows
    row = next(r for r in report.rows if r["name"] == "gradual 90% + KD")
    before = report.loaders[row["name"]](row["file"]).state_dict()
    write_npz(row["file"], read_npz(row["file"]), compress=False)   # the old, stored-not-deflated layout
    old = os.path.getsize(row["file"]) / 1e6
    report.rewrite_files()
    assert row["size_mb"] < 0.9 * old and row["size_mb"] == os.path.getsize(row["file"]) / 1e6
    after = report.loaders[row["name"]](row["file"]).state_dict()
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    with open(os.path.join(out, "results.jsonl")) as f:
        assert {json.loads(line)["name"]: json.loads(line)["size_mb"] for line in f}[row["name"]] == row["size_mb"]


def test_an_out_that_cannot_be_a_folder_is_refused_before_the_teacher_or_the_data_load(tmp_path, capsys):
    """It used to load the teacher and prepare its data (seconds on IMDB), then fail at the first write."""
    from minidl.io import WriteError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(WriteError, match="notes.txt is a file; give a folder"):
        CompressionReport(str(tmp_path / "no-such-teacher.npz"), str(tmp_path / "notes.txt"))
    assert main(["compress", "prune", "--teacher", str(tmp_path / "no-such-teacher.npz"), "--amount", "0.5",
                 "--out", str(tmp_path / "notes.txt" / "run")]) == 1
    assert "is a file, so no folder can be made there" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_decoder_of_another_kind_is_refused_before_any_row(tmp_path, teacher_checkpoint):
    """A GRU given as --decoder used to fail after the teacher's rows, with a dump of missing weights."""
    gru = fit(TrainConfig(model="gru", hidden=4, epochs=1, train_limit=50), out=tmp_path / "gru", progress=False,
              log=lambda *args: None)
    with pytest.raises(ValueError, match="is a gru, not a transformer like the teacher"):
        CompressionReport(teacher_checkpoint, tmp_path / "out", decoder_path=gru.checkpoint)
    assert not (tmp_path / "out" / "results.jsonl").exists()
    with pytest.raises(ValueError, match="is a directory, not a .npz file; pass the checkpoint file inside it"):
        CompressionReport(teacher_checkpoint, tmp_path / "out", decoder_path=tmp_path / "gru")   # was [Errno 21]


def test_rows_of_another_teacher_or_settings_are_refused_not_reused(report_rows, teacher_checkpoint, tmp_path):
    """--out's rows were matched by name alone: another teacher or --test-limit printed the old
    rows as the new ones, and a sweep's results.jsonl there was a KeyError traceback."""
    _, out, _ = report_rows
    with pytest.raises(ValueError, match=r"was measured with other settings \(--test-limit 400, now 100\)"):
        CompressionReport(teacher_checkpoint, out, fine_tune=600, test_limit=100)
    with pytest.raises(ValueError, match=r"other settings \(--fine-tune \(--fine-tune-reviews\) 600, now 500\)"):
        CompressionReport(teacher_checkpoint, out, fine_tune=500, test_limit=400)   # (said "fine_tune 600")
    (tmp_path / "results.jsonl").write_text('{"config": {"model": "gru"}, "test": {}}\n')
    with pytest.raises(ValueError, match="is not the results.jsonl of a compression report"):
        CompressionReport(teacher_checkpoint, tmp_path)


def test_the_decoder_row_says_what_the_decoder_is(report_rows):
    """It read "causal, last-token pooling" whatever was given (here the non-causal teacher)."""
    rows, _, _ = report_rows
    assert rows["decoder"]["note"] == "not causal, mean pooling"


def test_rows_the_report_cannot_reuse_are_refused_before_any_work(report_rows, teacher_checkpoint, monkeypatch):
    """A rerun with other --student-epochs printed the old students as the new ones; one without
    --decoder crashed with KeyError 'decoder' after every row was built; both were refused only
    after the data were prepared (7 s on IMDB)."""
    _, out, _ = report_rows
    common = dict(fine_tune=600, test_limit=400, gradual_epochs=1, log=None, reuse_all=True)
    prepare = report_module.prepare

    def not_yet(config):
        raise AssertionError("the data were prepared before --out's rows were checked")
    monkeypatch.setattr(report_module, "prepare", not_yet)
    with pytest.raises(ValueError, match=r"row 'student transformer \+ KD' was measured with other settings "
                                         r"\(--student-epochs 3, now 1\)"):
        CompressionReport(teacher_checkpoint, out, decoder_path=teacher_checkpoint, student_epochs=1, **common)
    with pytest.raises(ValueError, match="--out holds a decoder row; give its --decoder again"):
        CompressionReport(teacher_checkpoint, out, student_epochs=3, **common)
    monkeypatch.setattr(report_module, "prepare", prepare)
    CompressionReport(teacher_checkpoint, out, decoder_path=teacher_checkpoint, student_epochs=3, **common)
    common.pop("reuse_all")   # compress prune, qat, seeds build their own rows: the others are not theirs to refuse
    report = CompressionReport(teacher_checkpoint, out, student_epochs=1, **common)
    with pytest.raises(ValueError, match="--out holds a decoder row"):   # what compress-report would have said
        report.check_rows()


def test_a_row_compress_prune_made_at_another_level_is_timed_and_rewritten(teacher_checkpoint, tmp_path, capsys):
    """compress-report over rows of `compress prune --amount 0.3` (README's way) ended, after every
    row was built, in KeyError 'one-shot 30%'; 0.504 was the 50 % row."""
    out = str(tmp_path / "c")
    common = ["--teacher", teacher_checkpoint, "--out", out, "--fine-tune-reviews", "100", "--test-limit", "50"]
    assert main(["compress", "prune", *common, "--amount", "0.3"]) == 0
    assert main(["compress", "prune", *common, "--amount", "0.504"]) == 0
    report = CompressionReport(teacher_checkpoint, out, fine_tune=100, test_limit=50, log=None)
    report.teacher_row()
    rows = {row["name"]: row for row in report.measure_speed(reviews=50, repeats=1)}
    assert sorted(rows) == ["one-shot 30%", "one-shot 50.4%", "teacher"] and rows["one-shot 30%"]["reviews_per_s"] > 0
    report.rewrite_files()


def test_a_teacher_that_is_no_transformer_or_lies_in_out_models_is_refused(teacher_checkpoint, tmp_path):
    """An RNN teacher's rows claimed compression that never happened (its W_x and U are no Linears);
    a teacher at OUT/models/teacher.npz was replaced by the teacher row's bare weights file."""
    import shutil

    from minidl.compress.report import CompressionReport as Report

    rnn = fit(TrainConfig(model="rnn", hidden=4, epochs=1, train_limit=50), out=tmp_path / "rnn", progress=False,
              log=lambda *args: None)
    with pytest.raises(ValueError, match="is a rnn; the compression report and commands take a transformer"):
        Report(rnn.checkpoint, tmp_path / "out")
    (tmp_path / "out" / "models").mkdir(parents=True)
    inside = shutil.copy(teacher_checkpoint, tmp_path / "out" / "models" / "teacher.npz")
    with pytest.raises(ValueError, match="lies in --out's models/ folder, where the report writes its rows' files"):
        Report(inside, tmp_path / "out")


def test_the_command_runs_every_variant_and_writes_the_table_and_plots(teacher_checkpoint, tmp_path, capsys):
    """No test ran `minidl compress-report` itself to the end (coverage): every row, the timing, the files and
    the printed table, on small settings; a second run reuses every row."""
    from minidl.cli import main

    out = tmp_path / "report"
    argv = ["compress-report", "--teacher", teacher_checkpoint, "--out", str(out), "--fine-tune", "50",
            "--student-epochs", "1", "--gradual-epochs", "1", "--gradual-tune", "50", "--test-limit", "50"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    with open(out / "results.jsonl") as f:
        names = [json.loads(line)["name"] for line in f]
    table = [line for line in printed if line.startswith("| ")]
    assert len(table) == len(names) + 1 and {"teacher", "int8", "low-rank 50% + KD"} <= set(names)
    assert printed[-1] == f"written: {out / 'results.md'}, accuracy_vs_size.png, accuracy_vs_speed.png"
    assert {"results.md", "accuracy_vs_size.png", "accuracy_vs_speed.svg"} <= set(os.listdir(out))
    assert main(argv) == 0 and "| teacher |" in capsys.readouterr().out     # resumed: every row reused


def test_a_full_disk_while_a_row_is_written_leaves_the_rows_before_it(teacher_checkpoint, tmp_path, monkeypatch):
    """A write cut short (a full disk, a kill) left half a line at the end of results.jsonl, and every later run
    refused the folder as "not the results.jsonl of a compression report"; the next row starts a line of its own."""
    from minidl.compress.report import _loaded
    from minidl.nn import Module

    import builtins
    import errno

    report = CompressionReport(teacher_checkpoint, tmp_path, test_limit=50, log=None)
    report.teacher_row()
    real_open = builtins.open

    class HalfWritten:
        def __init__(self, file):
            self.file = file

        def __getattr__(self, name):
            return getattr(self.file, name)

        def write(self, text):
            self.file.write(text[:len(text) // 2])
            self.file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exception):
            self.file.close()

    def full_disk(path, mode="r", *args, **kwargs):
        file = real_open(path, mode, *args, **kwargs)
        writes = "results" in os.path.basename(str(path)) and ("w" in mode or "a" in mode)
        return HalfWritten(file) if writes else file

    monkeypatch.setattr(builtins, "open", full_disk)
    with pytest.raises(OSError):
        report.control_row()
    monkeypatch.setattr(builtins, "open", real_open)
    again = CompressionReport(teacher_checkpoint, tmp_path, test_limit=50, log=None)
    assert [row["name"] for row in again.rows] == ["teacher"]
    with pytest.warns(UserWarning, match="removing a truncated last line .* that row is measured again"):
        again.record("copy", "teacher", again.teacher_copy, Module.save, lambda path: _loaded(again.fresh(), path))
    assert [json.loads(line)["name"] for line in open(tmp_path / "results.jsonl")] == ["teacher", "copy"]


def test_low_rank_rows_factorise_a_small_encoder_or_are_left_out(tmp_path):
    """Linears under 1,024 weights were never factorised, so a small teacher's low-rank rows were the teacher
    itself, noted "encoder Linears at 50% of their parameters"; too small for any rank to save: no row."""
    def trained(width, name):
        options = {"num_heads": 1, "num_layers": 1, "d_ff": 2 * width, "max_len": 20}
        config = TrainConfig(model="transformer", hidden=width, embed_dim=width, max_length=20, model_options=options,
                             epochs=1, train_limit=100)
        return fit(config, out=tmp_path / name, progress=False, log=lambda *_: None).checkpoint

    small = CompressionReport(trained(16, "small"), tmp_path / "report", fine_tune=20, test_limit=50, log=None)
    small.teacher_row()
    assert small._lowrank((0.5,)) == ["low-rank 50%, no fine-tune", "low-rank 50% + KD"]
    teacher, *factorised = small.rows
    assert all(row["parameters"] < teacher["parameters"] - 1000 for row in factorised)   # 4,674 -> 3,618
    said = []
    tiny = CompressionReport(trained(2, "tiny"), tmp_path / "tiny_report", fine_tune=20, test_limit=50,
                             log=said.append)
    assert tiny._lowrank((0.25, 0.5)) == [] and tiny.rows == []
    assert said == [f"no low-rank {f} rows: the encoder's Linears are too small to save that" for f in ("25%", "50%")]


def test_two_commands_sharing_an_out_keep_each_others_rows(teacher_checkpoint, tmp_path):
    """minidl compress prune and qat into one --out at the same time: each row is appended, not the file rewritten
    from the rows one command read at its start (the other's rows were lost that way)."""
    from minidl.compress.report import _loaded
    from minidl.nn import Module

    first, second = (CompressionReport(teacher_checkpoint, tmp_path, test_limit=50, log=None) for _ in range(2))
    for report, name in ((first, "one"), (second, "two")):
        report.record(name, "teacher", report.teacher_copy, Module.save,
                      lambda path, r=report: _loaded(r.fresh(), path))
    assert [json.loads(line)["name"] for line in open(tmp_path / "results.jsonl")] == ["one", "two"]
    text = (tmp_path / "results.jsonl").read_text()
    (tmp_path / "results.jsonl").write_text(text.rstrip("\n"))   # a whole last line without its newline is kept
    first.record("three", "teacher", first.teacher_copy, Module.save, lambda path: _loaded(first.fresh(), path))
    assert [json.loads(line)["name"] for line in open(tmp_path / "results.jsonl")] == ["one", "two", "three"]


def test_a_copied_out_reads_and_rewrites_its_own_files(teacher_checkpoint, tmp_path, monkeypatch):
    """A row's file was found by the path it was written at, from the folder the command ran in: a copy of --out
    rewrote and timed the first folder's files, and with those gone (or run from elsewhere) none was found."""
    import shutil

    monkeypatch.chdir(tmp_path)
    CompressionReport(teacher_checkpoint, "R", test_limit=50, log=None).teacher_row()
    shutil.copytree("R", "copy")
    shutil.rmtree("R")
    report = CompressionReport(teacher_checkpoint, str(tmp_path / "copy"), test_limit=50, log=None)
    report.teacher_row()
    assert report.file_of("teacher") == str(tmp_path / "copy" / "models" / "teacher.npz")
    report.rewrite_files()
    assert report.measure_speed(reviews=50, repeats=1)[0]["reviews_per_s"] > 0
    assert sorted(os.listdir(tmp_path)) == ["copy"]   # nothing written outside --out


def test_compress_seeds_checks_every_seeds_folder_before_any_row(teacher_checkpoint, tmp_path, capsys):
    """--out/seedN was not checked as --out is: a user's file in seed1/models/ was overwritten, and a results.jsonl
    there that is no report's was refused only after every seed-0 row was built."""
    mine = tmp_path / "mine" / "seed1" / "models" / "teacher_+_KD_pass.npz"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    (tmp_path / "foreign" / "seed1").mkdir(parents=True)
    (tmp_path / "foreign" / "seed1" / "results.jsonl").write_text('{"config": {"model": "gru"}, "test": {}}\n')
    for out, words in (("mine", "seed1/models is there and was not written by minidl compress"),
                       ("foreign", "seed1/results.jsonl is not the results.jsonl of a compression report")):
        assert main(["compress", "seeds", "--teacher", teacher_checkpoint, "--out", str(tmp_path / out),
                     "--fine-tune-reviews", "50", "--test-limit", "50", "--student-epochs", "1", "--seeds", "0,1"]) == 1
        assert words in capsys.readouterr().err
        assert not (tmp_path / out / "results.jsonl").exists()   # no seed-0 row was built
    assert mine.read_bytes() == b"mine"


def test_the_embedding_included_rows_note_says_what_the_linears_kept(report_rows):
    """Its note said "N(0, 1) embeddings under one threshold with the Linears empty the Linears" also where they
    kept most of their weights (16-60 % on a tiny teacher); it says what they kept, read from the saved file."""
    from minidl.compress.prune import sparsity_report, weight_matrices

    rows, _, report = report_rows
    model = report.load_sparse(report.file_of("one-shot 20%, embedding included"))
    kept = 1 - sparsity_report(model, names=weight_matrices(model, embeddings=False)).sparsity
    assert 0 < kept < 1, kept
    assert rows["one-shot 20%, embedding included"]["note"] == (
        f"no retraining; with the N(0, 1) embedding under one threshold the Linears kept {kept:.0%} of their weights "
        f"(alone: 80%)")

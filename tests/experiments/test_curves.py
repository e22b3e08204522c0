"""Training curves: ``--test-curve`` adds the test split's loss and accuracy to every evaluation,
and ``minidl curves`` plots train/validation/test per epoch (and refuses runs without them)."""
import json
import os

from minidl.cli import main


def _train(tmp_path, name, *extra):
    out = str(tmp_path / name)
    argv = ["train", "--model", "softmax", "--hidden", "8", "--embed-dim", "8", "--epochs", "2", "--train-limit",
            "600", "--eval-every", "8", "--quiet", "--out", out, *extra]
    assert main(argv) == 0
    return os.path.join(out, "results.json")


def test_test_curve_is_recorded_and_plotted(tmp_path):
    path = _train(tmp_path, "curve", "--test-curve")
    history = json.load(open(path))["history"]
    assert len(history) >= 4
    for h in history:
        assert 0.0 <= h["test_accuracy"] <= 1.0 and h["test_loss"] > 0 and h["train_loss"] > 0
    assert 1.5 < history[-1]["epoch"] <= 2.0
    out = str(tmp_path / "curves.png")
    assert main(["curves", path, path, "--out", out]) == 0
    assert os.path.getsize(out) > 10_000
    for name in ("curves.svg", "curves.pdf", "curves.png"):   # its own figures it replaces
        assert main(["curves", path, "--out", str(tmp_path / name)]) == 0
    assert main(["curves", os.path.dirname(path), "--out", out]) == 0    # the run's folder: its results.json


def test_curves_never_replaces_a_figure_of_the_user(tmp_path, capsys):
    """curves --out photo.png replaced any file there; now only a figure minidl wrote (tagged in its
    metadata), and only in the formats that keep the tag. Refused before the results are read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    for name in ("photo.png", "drawing.svg", "paper.pdf", "notes.txt"):
        mine = tmp_path / name
        fig.savefig(mine) if name != "notes.txt" else mine.write_text("mine")
        before = mine.read_bytes()
        assert main(["curves", "no-such-results.json", "--out", str(mine)]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and (f"{mine} is there and was not written by minidl curves" in err[0]
                                  or "give a .png, .svg or .pdf file" in err[0]), err
        assert mine.read_bytes() == before
    plt.close(fig)
    assert main(["curves", "no-such-results.json", "--out", str(tmp_path / "c")]) == 1   # a PNG named c was written
    assert capsys.readouterr().err == f"minidl curves: --out {tmp_path / 'c'}: give a .png, .svg or .pdf file\n"


def test_curves_refuses_a_run_without_test_curve(tmp_path, capsys):
    path = _train(tmp_path, "plain")
    assert main(["curves", path, "--out", str(tmp_path / "c.png")]) == 1
    assert "--test-curve" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "c.png")


def test_curves_refuses_a_file_that_is_not_a_train_results_json(tmp_path, capsys):
    for name, text in (("table.csv", "text,label\ngood,pos\n"), ("list.json", "[1, 2]")):
        path = tmp_path / name
        path.write_text(text)
        assert main(["curves", str(path), "--out", str(tmp_path / "c.png")]) == 1
        assert "is not a results.json written by minidl train" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "c.png")


def test_without_a_validation_split_the_test_curve_is_not_drawn_twice(tmp_path):
    """--validation 0: the test split chose the best, so the "validation" numbers are the test's; they
    were drawn as a validation curve lying under the test one. The title names a non-transformer by
    its size (every model was an "encoder"), under the run's folder (runs of one model and size had panels
    of one title)."""
    from minidl.experiments.curves import read_history

    label, history, validated, _ = read_history(_train(tmp_path, "noval", "--test-curve", "--validation", "0"))
    assert not validated and label.startswith("noval\nsoftmax h=8, test acc ")
    assert label.endswith(", best chosen on test")
    assert all(h["accuracy"] == h["test_accuracy"] for h in history)
    label, _, validated, _ = read_history(os.path.dirname(_train(tmp_path, "val", "--test-curve")))   # the folder
    assert validated and label.startswith("val\nsoftmax h=8, test acc ")
    os.rename(tmp_path / "val" / "results.json", tmp_path / "teacher.json")
    assert read_history(str(tmp_path / "teacher.json"))[0].startswith("teacher\n")   # a copy under its own name


def test_a_folder_of_runs_is_one_line_naming_their_results(tmp_path, capsys):
    """It said "no such file or folder: 'runs/results.json'; check the path" of a folder that is there."""
    for name in ("a", "b"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "results.json").write_text("{}")
    runs = str(tmp_path / "runs")
    assert main(["curves", runs, "--out", str(tmp_path / "c.png")]) == 1
    assert capsys.readouterr().err == (f"minidl curves: {runs} is a folder of 2 runs; give "
                                       f"{os.path.join(runs, '*', 'results.json')}\n")
    assert not os.path.exists(tmp_path / "c.png")


def test_a_results_json_lacking_curve_numbers_is_one_line(tmp_path, capsys):
    """"test": null was a TypeError traceback, a history without train_loss a KeyError."""
    for name, result in (("null.json", {"config": {"model": "gru"}, "test": None,
                                        "history": [{"epoch": 1, "test_accuracy": 0.5}]}),
                         ("short.json", {"config": {"model": "gru"}, "test": {"accuracy": 0.5},
                                         "history": [{"epoch": 1, "test_accuracy": 0.5, "loss": 0.7}]})):
        (tmp_path / name).write_text(json.dumps(result))
        assert main(["curves", str(tmp_path / name), "--out", str(tmp_path / "c.png")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "its history lacks" in err and "minidl train --test-curve" in err, err
    assert not os.path.exists(tmp_path / "c.png")


def test_a_taught_run_names_its_train_loss_the_distillation_loss(tmp_path, monkeypatch):
    """With --teacher the train loss is α·CE + (1−α)·T²·KL, 0.43 at chance accuracy next to a validation
    cross-entropy of 0.68: it was drawn as "train" on the same axis, an overfitting gap that was not there."""
    from minidl.experiments import curves

    drawn = []
    monkeypatch.setattr(curves, "write_figure", lambda fig, out, **options: drawn.append(fig) or out)
    taught = _train(tmp_path, "taught", "--test-curve", "--teacher", "tfidf")
    plain = _train(tmp_path, "plain", "--test-curve")
    curves.plot_curves([taught, plain], str(tmp_path / "c.png"))
    legends = [[text.get_text() for text in ax.get_legend().get_texts()] for ax in drawn[0].axes]
    assert legends[0][0] == "train: distillation loss (running mean)"       # the taught run's loss panel
    assert [legend[0] for legend in legends[1:]] == ["train (running mean)"] * 3

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

"""`minidl demo` end to end, shrunk: the sweep runs, the plot and the table are written."""
from minidl.experiments import demo


def test_demo_runs_the_sweep_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "MODELS", ("gru", "mlp"))
    monkeypatch.setattr(demo, "HIDDEN", (4, 8))
    monkeypatch.setattr(demo, "SEEDS", (0,))
    monkeypatch.setattr(demo, "SETTINGS", {**demo.SETTINGS, "epochs": 1, "train_limit": 300})

    class Args:
        out, workers, device = str(tmp_path), 0, "cpu"

    assert demo.main(Args) == 0
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "sweep.svg").exists()
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4
    assert "| gru | 8 |" in capsys.readouterr().out

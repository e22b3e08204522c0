"""The course's finding, reproduced: windowed attention is right when the negator is within
its radius and fooled beyond it; the GRU is not fooled by distance."""
from minidl.experiments import probe


def test_attention_is_fooled_beyond_its_radius_and_the_gru_is_not():
    results = probe.run(models=("attention", "gru"), seed=0, radius=5)
    attention, gru = results["attention"]["by_distance"], results["gru"]["by_distance"]
    assert min(attention[d] for d in range(1, 6)) >= 0.9, attention      # the sentiment word sees "not"
    assert max(attention[d] for d in range(11, 13)) <= 0.5, attention    # no word sees both: below chance
    assert min(gru.values()) >= 0.95, gru


def test_the_command_writes_its_table_json_and_figures_and_keeps_a_users_file(tmp_path, capsys, monkeypatch):
    """minidl probe's own lines (the files, the table, the refusal) ran in no test before (coverage)."""
    import json

    from minidl.cli import main

    fake = {"attention": {"test": 0.935, "by_distance": {1: 1.0, 2: 0.25}},
            "gru": {"test": 0.998, "by_distance": {1: 0.99, 2: 1.0}}}
    monkeypatch.setattr(probe, "run", lambda models, **settings: {name: fake[name] for name in models})
    out = tmp_path / "probe"
    assert main(["probe", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4:] == ["  d   attention        gru", "  1       1.000      0.990", "  2       0.250      1.000",
                          f"wrote {out}/probe.png, probe.svg and probe.json"]
    assert json.loads((out / "probe.json").read_text())["gru"]["by_distance"] == {"1": 0.99, "2": 1.0}
    assert (out / "probe.png").read_bytes()[:4] == b"\x89PNG" and b"<svg" in (out / "probe.svg").read_bytes()
    assert main(["probe", "--out", str(out), "--models", "gru"]) == 0     # its own files: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "probe.json").write_text("my notes")
    assert main(["probe", "--out", str(mine)]) == 1
    assert "--out" in capsys.readouterr().err and (mine / "probe.json").read_text() == "my notes"


def test_the_radius_lines_are_drawn_only_with_an_attention_model(monkeypatch):
    drawn = []
    monkeypatch.setattr(probe, "save_figure",
                        lambda fig, *a, **k: drawn.append([t.get_text() for t in fig.axes[0].texts]))
    for models in (("attention", "gru"), ("gru",)):
        probe.plot({m: {"test": 0.9, "by_distance": {1: 1.0, 2: 0.5}} for m in models}, 5, "unused")
    assert drawn == [["attention radius r = 5", "2r: no word\nsees both"], []]

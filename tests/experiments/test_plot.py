"""Sweep figures: valid PNG and SVG files, written atomically, for sizes and for architectures."""
import json
import os
import xml.etree.ElementTree as ET

import pytest

from minidl.cli import main
from minidl.experiments.plot import plot_sweep
from minidl.experiments.sweep import job_key
from minidl.train import TrainConfig


def fake(model, hidden, seed, accuracy):
    config = TrainConfig(model=model, hidden=hidden, seed=seed).to_dict()
    return {"key": job_key(config), "config": config,
            "test": {"accuracy": accuracy, "f1": accuracy - 0.02, "auc": accuracy + 0.05, "loss": 1 - accuracy}}


def check_files(prefix):
    with open(f"{prefix}.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(f"{prefix}.svg").getroot()
    assert root.tag.endswith("svg")
    assert not [name for name in os.listdir(os.path.dirname(prefix)) if ".tmp" in name]  # no temporary leftovers


def test_hidden_size_sweep_writes_png_and_svg(tmp_path):
    results = [fake(model, hidden, seed, 0.6 + 0.001 * hidden + 0.01 * seed + (0.05 if model == "gru" else 0))
               for model in ("rnn", "gru") for hidden in (16, 32, 64, 96, 128) for seed in (0, 1, 2)]
    paths = plot_sweep(results, str(tmp_path / "out" / "sweep"), title="test sweep")
    assert paths == [str(tmp_path / "out" / "sweep.png"), str(tmp_path / "out" / "sweep.svg")]
    check_files(str(tmp_path / "out" / "sweep"))
    svg = open(paths[1]).read()
    assert "test sweep" in svg and "gru" in svg and "96" in svg  # title, legend, a tick at each size
    for name, title in (("default", None), ("untitled", "")):           # --title "": none (it gave the default)
        plot_sweep(results, str(tmp_path / "out" / name), title=title)
    titles = {name: "seeds" in open(tmp_path / "out" / f"{name}.svg").read() for name in ("default", "untitled")}
    assert titles == {"default": True, "untitled": False}


def test_a_spread_band_stays_between_0_and_1(tmp_path, monkeypatch):
    """mean ± std of an F1 of 0.05 and 0.9 over seeds was shaded below 0."""
    from minidl.experiments import plot

    drawn = []
    monkeypatch.setattr(plot, "save_figure", lambda fig, prefix: drawn.append(fig))
    results = [fake("gru", hidden, seed, 0.5) for hidden in (16, 32) for seed in (0, 1)]
    for i, record in enumerate(results):
        record["test"]["f1"] = (0.05, 0.9)[i % 2]
    plot_sweep(results, str(tmp_path / "f1"), metrics=["f1"])
    band = drawn[0].axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == 0.0 and band.max() <= 1.0
    # so do the error bars of one size and of architectures (they reached below 0 and past 1)
    for hidden in ([16], [16, [8, 4]]):
        records = [fake("gru", h, seed, (0.1, 0.99)[seed]) for h in hidden for seed in (0, 1)]
        plot_sweep(records, str(tmp_path / "one"), metrics=["accuracy"])
        bars = drawn[-1].axes[0].collections[-1].get_segments()
        ends = [y for segment in bars for _, y in segment]
        assert min(ends) == 0.0 and max(ends) == pytest.approx(1.0) and max(ends) <= 1.0 + 1e-12


def test_architecture_sweep_plots_categories(tmp_path):
    architectures = [[50], [64, 32], [64, 32, 16], [200, 50], [32, 16], [8, 16, 32]]
    results = [fake(model, hidden, seed, 0.8 + 0.01 * i + 0.005 * seed)
               for model in ("mlp", "softmax") for i, hidden in enumerate(architectures) for seed in (0, 1)]
    plot_sweep(results, str(tmp_path / "mlp"), metrics=("accuracy", "f1"))
    check_files(str(tmp_path / "mlp"))
    assert "[64, 32, 16]" in open(tmp_path / "mlp.svg").read()


def test_a_non_numeric_x_is_named_in_the_title(tmp_path):
    """--x train_limit (None or a number: categories) was titled "against architecture"."""
    results = [fake("mlp", 8, seed, 0.7 + 0.01 * seed) for seed in (0, 1)]
    results = [{**r, "config": {**r["config"], "train_limit": limit}} for limit in (None, 1000) for r in results]
    plot_sweep(results, str(tmp_path / "limit"), x="train_limit")
    svg = open(tmp_path / "limit.svg").read()
    assert "against train_limit" in svg and "architecture" not in svg


def test_one_seed_has_no_spread_in_the_table_or_the_title(tmp_path, capsys):
    """With one seed the table read "0.610 ± 0.000" and the title "mean ± std over 1 seeds"."""
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(fake("gru", hidden, 0, 0.61)) + "\n" for hidden in (4, 8)))
    assert main(["plot", "--results", str(results), "--metrics", "accuracy"]) == 0
    assert "| gru | 4 | 1 | 0.610 |" in capsys.readouterr().out
    svg = open(tmp_path / "sweep.svg").read()
    assert "(1 seed)" in svg and "1 seeds" not in svg


def test_nothing_to_plot_is_a_clear_error(tmp_path):
    failed = {"key": "k", "config": TrainConfig().to_dict(), "error": "boom"}
    with pytest.raises(ValueError, match="no successful results"):
        plot_sweep([failed], str(tmp_path / "x"))
    assert not os.listdir(tmp_path)


def test_long_legend_labels_wrap_inside_the_figure():
    """Five series whose labels name two differing settings each (as a recipes sweep gives) ran off
    both edges of the three-panel figure in one row; legend_columns wraps them onto rows that fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from minidl.io import legend_columns

    labels = [f"{m} dropout={d} word_dropout={w}" for m, d, w in
              [("gru", 0.3, 0.0), ("gru", 0.5, 0.0), ("attention", 0.3, 0.0), ("attention", 0.3, 0.1),
               ("attention", 0.5, 0.0)]]
    fig = Figure(figsize=(4.3 * 3 + 0.6, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label in labels:
        ax.plot([0, 1], [0, 1], marker="o", label=label)
    columns = legend_columns(labels, fig.get_figwidth())
    assert 1 < columns < len(labels)
    legend = fig.legend(loc="outside lower center", ncols=columns, frameon=False)
    fig.canvas.draw()
    box, page = legend.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1
    assert legend_columns(["rnn", "gru"], fig.get_figwidth()) == 2  # short labels stay on one row


@pytest.mark.parametrize("options, error", [
    (["--x", "foo"], "--x 'foo' is not a setting of these runs; choose one of batch_size, "),
    (["--metrics", "foo"], "--metrics 'foo': give comma-separated test metrics of accuracy, auc, f1, loss"),
    (["--metrics", ""], "--metrics '': give comma-separated test metrics of accuracy, auc, f1, loss"),
])
def test_an_unknown_x_or_metric_is_refused_with_the_choices(tmp_path, capsys, options, error):
    """--x foo drew a None column, --metrics foo a "nan ± 0.000" one, --metrics "" a matplotlib error."""
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(fake("gru", 4, seed, 0.6)) + "\n" for seed in (0, 1)))
    assert main(["plot", "--results", str(results), "--out", str(tmp_path / "p"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minidl plot: error: {error}") and err.endswith(" (nothing was written)\n")
    assert sorted(os.listdir(tmp_path)) == ["results.jsonl"]


def test_models_that_the_file_has_no_runs_of_are_named(tmp_path, capsys):
    """--models foo said "no successful results to plot (every job failed, or the file is empty)"."""
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(fake("gru", 4, seed, 0.6)) + "\n" for seed in (0, 1)))
    assert main(["plot", "--results", str(results), "--out", str(tmp_path / "p"), "--models", "foo"]) == 2
    err = capsys.readouterr().err
    assert err == f"minidl plot: error: --models foo: {results} has no runs of them; it has gru (nothing was written)\n"


def test_a_file_that_is_not_a_sweep_is_one_error_and_a_folder_out_gets_sweep_files(tmp_path, capsys):
    """A train results.json (one line, no newline) was first "ignoring a truncated last line ... that job
    will run again", then the error; a folder was "[Errno 21] Is a directory"; a record with no
    "test" was a KeyError; --out FOLDER/ wrote the hidden files FOLDER/.png, .svg and .md."""
    (tmp_path / "run").mkdir()
    run = tmp_path / "run" / "results.json"
    run.write_text(json.dumps({"config": TrainConfig().to_dict(), "test": {"accuracy": 0.5}, "history": []})[:-1])
    untested = tmp_path / "untested.jsonl"
    untested.write_text(json.dumps({"key": "k", "config": TrainConfig().to_dict()}) + "\n")
    for path, words in ((run, "is not a sweep results file"), (tmp_path / "run", "is a folder; give the results.jsonl"),
                        (untested, "is not a sweep results file")):
        assert main(["plot", "--results", str(path), "--out", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("minidl plot: error: ") and words in err and err.count("\n") == 1, err
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(fake("gru", 4, seed, 0.6)) + "\n" for seed in (0, 1)))
    (tmp_path / "figures").mkdir()
    assert main(["plot", "--results", str(results), "--out", str(tmp_path / "figures") + os.sep]) == 0
    assert sorted(os.listdir(tmp_path / "figures")) == ["sweep.md", "sweep.png", "sweep.svg"]
    (tmp_path / "named").mkdir()           # --out fig.png wrote fig.png.png, fig.png.svg and fig.png.md
    capsys.readouterr()
    assert main(["plot", "--results", str(results), "--out", str(tmp_path / "named" / "fig.PNG"), "--metrics",
                 "accuracy,f1,accuracy"]) == 0   # each metric once (accuracy's panel and column came twice)
    assert sorted(os.listdir(tmp_path / "named")) == ["fig.md", "fig.png", "fig.svg"]
    assert capsys.readouterr().out.splitlines()[0] == "| model | hidden | seeds | accuracy | F1 |"
    pdf = str(tmp_path / "named" / "other.pdf")   # wrote other.pdf.png, other.pdf.svg and other.pdf.md
    assert main(["plot", "--results", str(results), "--out", pdf]) == 2
    assert capsys.readouterr() == ("", f"minidl plot: error: --out {pdf}: plot writes OUT.png, OUT.svg and OUT.md; "
                                       f"give --out without .pdf, like {pdf[:-4]} (nothing was written)\n")
    assert sorted(os.listdir(tmp_path / "named")) == ["fig.md", "fig.png", "fig.svg"]
    assert main(["plot", "--results", str(results), "--out", str(tmp_path / "lr0.01")]) == 0   # a dot in a name
    assert (tmp_path / "lr0.01.png").exists()


def test_two_sweeps_of_one_folder_get_figures_of_their_own_by_default(tmp_path):
    """Without --out both a.jsonl and b.jsonl were plotted to sweep.*: the second replaced the first's figures."""
    for name, accuracy in (("a", 0.6), ("b", 0.7), ("results", 0.8)):
        results = tmp_path / f"{name}.jsonl"
        results.write_text("".join(json.dumps(fake("gru", 4, seed, accuracy)) + "\n" for seed in (0, 1)))
        assert main(["plot", "--results", str(results)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.md")) == ["a.md", "b.md", "sweep.md"]
    assert "0.600" in (tmp_path / "a.md").read_text() and "0.700" in (tmp_path / "b.md").read_text()


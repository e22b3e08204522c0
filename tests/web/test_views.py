"""The API of the Graph, Attention and Runs views: the graph of a small expression node by node,
its gradients, one-line 400s for bad expressions, a classifier's loss graph, attention maps whose
rows sum to 1, the runs folder listed (and read again as a run or sweep is appended to), and no
path out of it."""
import json
import os
from urllib.parse import quote, urlencode

import numpy as np
import pytest

from minidl.cli import main
from minidl.experiments.sweep import summarise, table_markdown
from minidl.io import write_npz
from minidl.web import Models

from .conftest import PLOT, one_epoch_runs, serving
from .test_server import get

EXPRESSION = "x = [1, -2, 3]\ny = tanh(x) * x\nsum(y)"


def graph(url, **params):
    return get(f"{url}/api/graph?{urlencode(params)}")


def test_the_graph_of_an_expression_has_its_nodes_edges_and_values(views_url):
    status, answer = graph(views_url, expr=EXPRESSION)
    assert status == 200 and answer["mode"] == "full" and answer["backward"] is False
    nodes = answer["nodes"]
    assert [(n["label"], n["kind"], n["shape"]) for n in nodes] == [
        ("x", "parameter", [3]), ("tanh", "op", [3]), ("y = mul", "op", [3]), ("sum", "op", [])]
    label = [n["label"] for n in nodes]
    assert sorted((label[e["source"]], label[e["target"]], e["input"]) for e in answer["edges"]) == [
        ("tanh", "y = mul", 0), ("x", "tanh", 0), ("x", "y = mul", 1), ("y = mul", "sum", 0)]
    x = np.array([1.0, -2.0, 3.0])
    assert nodes[1]["value"] == pytest.approx(np.tanh(x).tolist(), rel=1e-5)
    assert answer["output"] == {"shape": [], "value": pytest.approx(float((np.tanh(x) * x).sum()), rel=1e-5)}
    assert all(n["grad"] is None for n in nodes), "no gradients before the backward pass"
    assert answer["svg"].startswith("<?xml") and answer["svg"].count('<g class="node') == 4


def test_backward_shows_every_gradient_of_the_sum(views_url):
    status, answer = graph(views_url, expr=EXPRESSION, backward=1)
    assert status == 200 and answer["backward"] and "d L / d node" in answer["note"]
    x, grads = np.array([1.0, -2.0, 3.0]), {n["label"]: n["grad"] for n in answer["nodes"]}
    assert grads["x"] == pytest.approx((np.tanh(x) + x * (1 - np.tanh(x) ** 2)).tolist(), rel=1e-5)
    assert grads["sum"] == 1.0 and grads["tanh"] == pytest.approx(x.tolist())
    status, answer = graph(views_url, expr="x = [[1, 2]]; w = [[3, 4], [5, 6]]; x @ w * 2", backward=1)
    labels = [n["label"] for n in answer["nodes"]]
    assert status == 200 and labels[-1] == "L = sum" and "2" in labels, "a constant is named by its text"
    assert {n["label"]: n["grad"] for n in answer["nodes"]}["w"] == [[2.0, 2.0], [4.0, 4.0]]


def test_a_negated_list_is_a_variable_of_negated_numbers(views_url):
    """`x = -[1, 2]` said "is not rectangular" (ast.literal_eval takes no sign on a list)."""
    status, answer = graph(views_url, expr="x = -[1, 2]; y = +[[3], [4]]; sum(x @ y)")
    assert status == 200 and answer["nodes"][0]["value"] == [-1.0, -2.0] and answer["output"]["value"] == -11.0


def test_reductions_on_an_axis_pairwise_functions_and_unary_minus_compute_what_numpy_does():
    """The language's axis argument, maximum/minimum and unary minus on a name ran in no test (coverage)."""
    from minidl.web.expression import run

    program = run("x = [[1, -2], [3, 4]]; y = -x; m = maximum(x, 0) + minimum(x, -1)\n"
                  "sum(softmax(y, -1), 0) + max(m, 1) + mean(x, -2) + logsumexp(y, 1)")
    x = np.array([[1.0, -2.0], [3.0, 4.0]])
    softmax = np.exp(-x) / np.exp(-x).sum(axis=-1, keepdims=True)
    want = (softmax.sum(0) + (np.maximum(x, 0) + np.minimum(x, -1)).max(1) + x.mean(-2)
            + np.log(np.exp(-x).sum(1)))
    np.testing.assert_allclose(program.output.numpy(), want, rtol=1e-6)
    assert list(program.names) == ["x", "y", "0", "1", "m"]   # -1: the constant 1, negated by an op


def test_non_finite_values_come_as_strings(views_url):
    status, answer = graph(views_url, expr="x = [0, 1]; log(x)", backward=1)
    assert status == 200 and answer["nodes"][1]["value"] == ["-inf", 0.0] and answer["nodes"][0]["grad"][0] == "inf"


@pytest.mark.parametrize("expression, message", [
    ("x = [1, 2]\nsum(x +", "line 2, column 4: syntax error ('(' was never closed)"),
    ("x = [1, 2]\ny * x", "line 2: `y` is not defined"),
    ("x = [1, 2]; x @ [1, 2, 3]", "line 1: `x @ [1, 2, 3]` cannot be computed: matmul: shapes"),
    ("x = [[1, 2], [3]]", "is not rectangular"),
    ("x = 1\0", "syntax error (source code string cannot contain null bytes); allowed"),   # was "line None, ..."
    ("__import__('os').system('true')", "is not a known function call"),
    ("x = [1]; x.real", "`x.real` is not allowed"),
    ("open('/etc/passwd')", "is not a known function call"),
    ("'text'", "is not allowed"),
    ("x = [1, True]", "`True` is not a number"),
    ("sum([1, 2], axis=0)", "no keywords"),
    ("x = [1]\n" + "x=x*x+x\n" * 51, "more than 100 ops"),
    ("x = [" + ", ".join(["1"] * 257) + "]", "more than 256 numbers"),
    ("x = [1]; " + "-" * 60 + "x", "nested more than 40 deep"),
    ("1" * 1001, "at most 1,000"),
    ("   ", "the expression is empty"),
])
def test_a_bad_expression_gets_a_one_line_400(views_url, expression, message):
    status, body = graph(views_url, expr=expression)
    assert status == 400 and list(body) == ["error"] and message in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]


def test_the_graph_of_a_classifier_loss(views_url):
    status, answer = graph(views_url, model=0, text="a great film", label="neg")
    assert status == 200 and answer["name"] == "mlp" and answer["label"] == "neg"
    by_label = {n["label"]: n for n in answer["nodes"]}
    assert by_label["loss = cross_entropy"]["value"] == pytest.approx(answer["loss"])
    assert answer["loss"] == pytest.approx(-np.log(answer["probabilities"]["neg"]), rel=1e-4)
    assert "embedding.weight" in by_label and by_label["ids"]["kind"] == "input"
    status, answer = graph(views_url, model=1, text="a great film", backward=1)     # the transformer
    parameters = [n for n in answer["nodes"] if n["kind"] == "parameter"]
    assert status == 200 and answer["label"] == answer["prediction"] and len(parameters) > 10
    assert all(n["grad_norm"] is not None for n in parameters), "every parameter gets its gradient"
    assert "scaled_dot_product_attention" in {n["op"] for n in answer["nodes"]}


@pytest.mark.parametrize("params, message", [
    ({"model": 7, "text": "good"}, "model='7': give the number of a loaded classifier (0: mlp, 1: transformer"),
    ({"model": "x", "text": "good"}, "model='x'"),
    ({"model": -1, "text": "good"}, "model='-1': give the number"),            # Python's -1 gave the last one
    ({"model": 0, "text": "good", "backward": "no"}, "backward='no': give 1"),  # "no" drew the backward
    ({"model": 0, "text": "good", "label": "maybe"}, "label='maybe': this model's labels are neg, pos"),
    ({"model": 0, "text": ""}, "the text is empty"),
    ({"model": 1, "text": "good " * 70}, "this model reads at most 64"),
    ({}, "give an expression"),
])
def test_a_bad_model_graph_request_gets_a_400(views_url, params, message):
    status, body = graph(views_url, **params)
    assert status == 400 and message in body["error"], body


def test_attention_maps_per_layer_and_head_and_per_window(views_url):
    text = "the acting was great but the plot was not good"
    status, answer = get(f"{views_url}/api/attention?text={quote(text)}")
    assert status == 200 and [m["name"] for m in answer["models"]] == ["transformer", "attention"]
    transformer, window = answer["models"]
    T = len(transformer["words"])
    assert transformer["kind"] == "transformer" and np.shape(transformer["layers"]) == (2, 2, T, T)
    assert np.allclose(np.sum(transformer["layers"], axis=-1), 1, atol=1e-3), "each row is a softmax"
    assert window["kind"] == "window" and window["radius"] == 2 and len(window["weights"]) == len(window["words"])
    first, last = window["weights"][0], window["weights"][-1]
    assert first[:2] == [None, None] and last[-2:] == [None, None], "no neighbour before the first word"
    assert all(abs(sum(w for w in row if w is not None) - 1) < 1e-3 for row in window["weights"])


def test_attention_needs_a_model_with_attention_and_a_short_text(views_url, models):
    status, body = get(f"{views_url}/api/attention?text={quote('good ' * 240)}")
    assert status == 400 and "the text has more than 64 tokens; the Attention view shows at most 64" in body["error"]
    for url in serving(models):                                   # mlp and gru only
        status, body = get(f"{url}/api/attention?text=good")
        assert status == 400 and "no attention model is loaded: restart with minidl serve --classifier" in body["error"]
        assert get(f"{url}/api/info")[1]["attention"] == []


def test_runs_lists_runs_sweeps_plots_and_skips_a_broken_file(views_url, runs):
    status, listing = get(f"{views_url}/api/runs")
    assert status == 200 and listing["root"] == os.path.realpath(runs)
    assert [(r["path"], r["source"], r["finished"]) for r in listing["runs"]] == [
        ("gru/results.json", "results.json", True), ("mlp/results.json", "results.json", True)]
    for run in listing["runs"]:
        result = json.loads((runs / run["path"]).read_text())
        assert len(run["history"]) == len(result["history"]) == 6, "one point per evaluation (an epoch each)"
        assert {"epoch", "loss", "accuracy", "train_loss"} <= set(run["history"][0])
        assert run["test"]["accuracy"] == result["test"]["accuracy"]
    (sweep,) = listing["sweeps"]
    assert sweep["path"] == "sweep/results.jsonl" and [j["label"] for j in sweep["jobs"]] == [
        "mlp hidden=8 seed=0", "gru hidden=8 seed=0"]
    assert [(row["model"], row["seeds"]) for row in sweep["summary"]] == [("mlp", 1), ("gru", 1)]
    assert [p["path"] for p in listing["plots"]] == ["sweep/plot.svg"]
    assert listing["skipped"] == [{"path": "broken.json", "why": listing["skipped"][0]["why"]}]
    assert "Unterminated string" in listing["skipped"][0]["why"] or "Expecting" in listing["skipped"][0]["why"]


def test_a_run_whose_options_are_not_an_object_is_skipped_and_one_without_validation_shows_test_curves(tmp_path):
    """A results.json whose model_options was a string made /api/runs a 500 (the whole Runs view
    failed); a run trained with --validation 0 chose its best on the test split, and its
    "validation" curve was the test's under another name."""
    evaluation = {"step": 10, "epoch": 1.0, "loss": 0.6, "accuracy": 0.7, "train_loss": 0.65}
    config = {"model": "gru", "hidden": 8, "seed": 0}
    for name, run_config in (("odd", {**config, "model_options": "causal"}), ("noval", {**config, "validation": 0})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"config": run_config, "history": [evaluation]}))
    for url in serving(Models(runs=tmp_path)):
        status, listing = get(f"{url}/api/runs")
        assert status == 200, listing
        noval, odd = listing["runs"]
        assert odd["label"] == "gru hidden=8 seed=0" and noval["label"] == "gru hidden=8 seed=0, best chosen on test"
        assert noval["history"] == [{"step": 10, "epoch": 1.0, "train_loss": 0.65, "test_loss": 0.6,
                                     "test_accuracy": 0.7}]


def test_a_sweep_job_without_validation_shows_test_curves_as_a_run_does(tmp_path):
    """A sweep with --set validation=0: its jobs' test numbers were drawn as validation accuracy."""
    evaluation = {"step": 10, "epoch": 1.0, "loss": 0.6, "accuracy": 0.7}
    record = {"key": "a", "config": {"model": "mlp", "hidden": 4, "seed": 0, "validation": 0},
              "test": {"accuracy": 0.7}, "history": [evaluation]}
    (tmp_path / "sweep.jsonl").write_text(json.dumps(record) + "\n")
    for url in serving(Models(runs=tmp_path)):
        (sweep,) = get(f"{url}/api/runs")[1]["sweeps"]
    (job,) = sweep["jobs"]
    assert job["label"] == "mlp hidden=4 seed=0, best chosen on test"
    assert job["history"] == [{"step": 10, "epoch": 1.0, "test_loss": 0.6, "test_accuracy": 0.7}]


def checkpoint_with(path, history):
    """A last.npz as minidl train writes it, its metadata only: the run so far."""
    meta = {"format": "minidl-checkpoint-1", "config": {"model": "gru", "hidden": 8, "seed": 0},
            "loop": {"history": history}}
    write_npz(path, {"meta": np.array(json.dumps(meta))})


def test_a_run_or_sweep_being_written_shows_more_points_on_the_next_request(tmp_path):
    (tmp_path / "live").mkdir()
    evaluation = {"step": 10, "epoch": 1.0, "loss": 0.6, "accuracy": 0.7, "train_loss": 0.65}
    checkpoint_with(tmp_path / "live" / "last.npz", [evaluation])
    record = {"key": "a", "config": {"model": "gru", "hidden": 8, "seed": 0}, "test": {"accuracy": 0.8},
              "history": [evaluation]}
    (tmp_path / "sweep.jsonl").write_text(json.dumps(record) + "\n")
    for url in serving(Models(runs=tmp_path)):
        listing = get(f"{url}/api/runs")[1]
        assert [(r["path"], r["finished"], len(r["history"])) for r in listing["runs"]] == [("live/last.npz", False, 1)]
        assert len(listing["sweeps"][0]["jobs"]) == 1
        checkpoint_with(tmp_path / "live" / "last.npz", [evaluation, {**evaluation, "epoch": 2.0}])
        with open(tmp_path / "sweep.jsonl", "a") as f:
            f.write(json.dumps({**record, "key": "b", "config": {**record["config"], "seed": 1}}) + "\n")
            f.write('{"key": "c", "config": {"mod')                # a line being written
        listing = get(f"{url}/api/runs")[1]
        assert len(listing["runs"][0]["history"]) == 2
        assert [j["label"] for j in listing["sweeps"][0]["jobs"]] == ["gru hidden=8 seed=0", "gru hidden=8 seed=1"]
        assert listing["skipped"] == [{"path": "sweep.jsonl", "why": "line 3 is being written, not shown yet"}]
        (tmp_path / "live" / "results.json").write_text(json.dumps({**record, "history": [evaluation] * 3}))
        listing = get(f"{url}/api/runs")[1]
        assert [(r["path"], r["finished"], len(r["history"])) for r in listing["runs"]] == [
            ("live/results.json", True, 3)], "the finished run's results.json replaces its last.npz"


def test_a_sweep_over_a_setting_names_it_in_its_summary_and_its_job_labels(tmp_path):
    """Two sweeps with --set lr=0.001 and --set lr=0.01 in one file: the Runs view's table had two rows
    "mlp 4 2" and its chart two lines "mlp hidden=4 seed=0", the lr nowhere. Each summary row now has its
    settings as minidl plot's table writes them, and each job's label the settings that vary."""
    records = one_epoch_runs(tmp_path)
    for url in serving(Models(runs=tmp_path)):
        status, listing = get(f"{url}/api/runs")
    assert status == 200, listing
    (sweep,) = listing["sweeps"]
    assert [j["label"] for j in sweep["jobs"]] == [
        "mlp hidden=4 seed=0 lr=0.001", "mlp hidden=4 seed=1 lr=0.001", "mlp hidden=4 seed=0 lr=0.01",
        "mlp hidden=4 seed=1 lr=0.01", "gru hidden=8 seed=0 lr=0.01"]
    assert [j["settings"] for j in sweep["jobs"]] == [{"lr": r["config"]["lr"]} for r in records]
    assert [(row["model"], row["settings"], row["settings_label"]) for row in sweep["summary"]] == [
        ("mlp", {"lr": 0.001}, "lr=0.001"), ("mlp", {"lr": 0.01}, "lr=0.01"), ("gru", {"lr": 0.01}, "lr=0.01")]
    table = table_markdown(summarise(records)).splitlines()[2:]              # minidl plot's table: the same cells
    assert [line.split(" | ")[:2] for line in table] == [["| " + row["model"], row["settings_label"]]
                                                          for row in sweep["summary"]]


def test_a_sweep_whose_settings_do_not_vary_keeps_its_labels(tmp_path):
    record = {"key": "a", "config": {"model": "gru", "hidden": [8, 4], "seed": 0, "lr": 0.01},
              "test": {"accuracy": 0.8}, "history": []}
    other_seed = {**record, "key": "b", "config": {**record["config"], "seed": 1}}   # (one job per config, as plot)
    (tmp_path / "sweep.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(other_seed) + "\n")
    for url in serving(Models(runs=tmp_path)):
        (sweep,) = get(f"{url}/api/runs")[1]["sweeps"]
    assert [(j["label"], j["settings"]) for j in sweep["jobs"]] == [("gru hidden=[8,4] seed=0", {}),
                                                                     ("gru hidden=[8,4] seed=1", {})]
    assert [(row["settings"], row["settings_label"]) for row in sweep["summary"]] == [({}, "")]
    with open(tmp_path / "sweep.jsonl", "a") as f:   # the job run again: one job, the later line (it was two)
        f.write(json.dumps({**record, "key": "a2", "test": {"accuracy": 0.9}}) + "\n")
    for url in serving(Models(runs=tmp_path)):
        (sweep,) = get(f"{url}/api/runs")[1]["sweeps"]
    assert [job["label"] for job in sweep["jobs"]] == ["gru hidden=[8,4] seed=0", "gru hidden=[8,4] seed=1"]


def test_plots_are_served_and_no_path_leaves_the_runs_folder(views_url, runs, tmp_path):
    status, body = get(f"{views_url}/api/runs/file?path=sweep/plot.svg")
    assert status == 200 and body == PLOT
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    (runs / "link.png").symlink_to(secret)
    try:
        for path in ("../secret.png", "sweep/../../secret.png", str(secret), "/etc/passwd", "link.png", ".x.png",
                     "mlp/results.json", "sweep/./plot.svg"):
            status, body = get(f"{views_url}/api/runs/file?path={quote(path)}")
            assert status == 403 and list(body) == ["error"], (path, body)
        listing = get(f"{views_url}/api/runs")[1]
        assert "link.png" not in [p["path"] for p in listing["plots"]]
        assert any(s["path"] == "link.png" and "leads out" in s["why"] for s in listing["skipped"])
    finally:
        (runs / "link.png").unlink()
    assert get(f"{views_url}/api/runs/file?path=nothing.png")[0] == 404
    for path in ("%00", "sweep/plot.svg%00.png"):                   # os.path.realpath's ValueError was a 500
        status, body = get(f"{views_url}/api/runs/file?path={path}")
        assert status == 403 and "no NUL" in body["error"], body
    assert get(f"{views_url}/api/runs/file")[1] == {"error": "missing the path: /api/runs/file?path=..."}


def test_a_plot_is_sent_as_an_image_that_runs_nothing(views_url):
    import urllib.request

    with urllib.request.urlopen(f"{views_url}/api/runs/file?path=sweep/plot.svg", timeout=30) as response:
        assert response.headers["Content-Type"] == "image/svg+xml"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_without_runs_the_view_says_how_to_start_the_server(url):
    status, body = get(f"{url}/api/runs")
    assert status == 400 and "no runs folder: restart with minidl serve --runs" in body["error"]
    assert get(f"{url}/api/info")[1]["runs"] is None


def test_the_page_script_and_the_command_line_option(views_url, tmp_path, capsys):
    status, script = get(f"{views_url}/views.js")
    assert status == 200 and "/api/graph" in script and "/api/runs" in script
    assert "views.js" in get(f"{views_url}/")[1]
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--runs RUNS" in capsys.readouterr().out
    assert main(["serve", "--runs", str(tmp_path / "missing"), "--port", "0"]) == 1
    error = capsys.readouterr().err
    assert "--runs" in error and "no such folder" in error
    (tmp_path / "a.json").write_text("{}")
    assert main(["serve", "--runs", str(tmp_path / "a.json"), "--port", "0"]) == 1
    assert "a.json: a file, not a folder; give the folder" in capsys.readouterr().err   # was "no such folder"


def handout_expressions():
    """The expressions the assignment handouts ask students to type in the Graph view (the plain
    fenced blocks of their "Seeing it" sections)."""
    import pathlib
    import re

    found = []
    for handout in sorted(pathlib.Path(__file__).parents[2].glob("assignments/*/README.md")):
        section = handout.read_text().partition("## Seeing it")[2].partition("\n## ")[0]
        blocks = re.findall(r"^```(\w*)\n(.*?)^```", section, re.S | re.M)       # (language, text)
        found += [(handout.parent.name, text) for language, text in blocks if not language]
    return found


def test_the_handouts_expressions_run_and_give_the_gradients_they_promise(views_url):
    expressions = handout_expressions()
    assert sorted(name for name, _ in expressions) == ["compression", "ex2_sentiment", "mlm_distillation"]
    for name, expression in expressions:
        status, answer = graph(views_url, expr=expression, backward=1)
        assert status == 200, (name, answer)
        grads = {n["label"]: n["grad"] for n in answer["nodes"]}
        if "softmax" in expression:                              # the distillation loss, T = 2
            s, t = np.array([1.0, 2.0, 0.5]), np.array([2.0, 0.0, 1.0])
            softmax = lambda v: np.exp(v) / np.exp(v).sum()      # noqa: E731
            assert grads["s"] == pytest.approx((2 * (softmax(s / 2) - softmax(t / 2))).tolist(), abs=1e-6)
        else:                                                    # one GRU step
            assert {"z = sigmoid", "r = sigmoid", "c = tanh", "h", "L = sum"} <= set(grads)
            assert all(grads[k] is not None for k in ("z = sigmoid", "r = sigmoid", "c = tanh", "h"))


def test_files_the_view_does_not_read_do_not_hide_runs_and_the_ones_past_the_limit_are_said(tmp_path, monkeypatch):
    """MAX_FILES counted every file: 2,000 files of anything in a folder sorted first hid every run, and the
    listing's "skipped" said nothing."""
    from minidl.web import runs as runs_module

    monkeypatch.setattr(runs_module, "MAX_FILES", 3)
    (tmp_path / "a").mkdir()
    for i in range(5):
        (tmp_path / "a" / f"notes{i}.txt").write_text("")
    one_epoch_runs(tmp_path / "z")
    listing = runs_module.RunsFolder(tmp_path).listing()
    assert [r["path"] for r in listing["runs"]] == ["z/first/results.json"] and listing["skipped"] == []
    for i in range(3):
        (tmp_path / "a" / f"plot{i}.svg").write_text(PLOT)
    listing = runs_module.RunsFolder(tmp_path).listing()
    assert listing["runs"] == [] and listing["skipped"] == [
        {"path": ".", "why": "2 more files past the first 3: not listed; give --runs a folder nearer the runs"}]

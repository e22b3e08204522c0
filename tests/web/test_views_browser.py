"""The Graph, Attention and Runs views in a real headless Chromium, one run per view: the DOM holds
what the API answered, and the screenshot shows the view's colours (so it is not blank)."""
import re
from urllib.parse import quote, urlencode

import pytest

from minidl.web import Models

from .conftest import PLOT_COLOUR, browse, ink, one_epoch_runs, pixels, serving
from .test_server import get

PARAMETER, OP = (0xd9, 0xf0, 0xd3), (0xdd, 0xe8, 0xf6)      # minidl/viz/layout.py's fills of the graph's boxes
HEAT = (0x21, 0x66, 0xac)                                   # --heat in minidl/web/page.html: a map's largest weight
CURVES = {"train": (0x1b, 0x9e, 0x77), "validation": (0xd9, 0x5f, 0x02)}    # CURVES in minidl/web/views.js
TEXT = "the acting was great but the plot was not good"


@pytest.fixture(scope="module")
def open_view(chromium, views_url, tmp_path_factory):
    """open_view(**query) -> (DOM, screenshot) of the page opened with that query."""
    return lambda **query: browse(chromium, f"{views_url}/?{urlencode(query)}", tmp_path_factory.mktemp("view"))


def test_the_graph_view_draws_the_graph_with_its_gradients(open_view):
    dom, screenshot = open_view(view="graph", expr="x = [1, -2, 3]\nh = tanh(x) * x\nsum(h)", backward=1)
    assert 'id="view-graph"' in dom and re.search(r'<section id="view-graph">', dom), "the Graph view is shown"
    assert len(re.findall(r'<g class="node (parameter|op)">', dom)) == 4
    assert "grad [" in dom and "backward: each node's gradient" in dom
    assert 'id="graph-error" class="error"></div>' in dom, "no error shown"
    assert pixels(screenshot, PARAMETER) > 200 and pixels(screenshot, OP) > 200, "the boxes are drawn"


def test_a_bad_expression_shows_its_message_on_the_page(open_view, views_url):
    expression = "x = [1, 2]\nx @ [1, 2, 3]"
    dom, _ = open_view(view="graph", expr=expression)
    error = get(f"{views_url}/api/graph?expr={quote(expression)}")[1]["error"]
    shown = re.search(r'<div id="graph-error" class="error">(.*?)</div>', dom).group(1)
    assert shown == error.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert "cannot be computed: matmul" in shown and '<div id="graph-out"></div>' in dom


def test_the_attention_view_draws_a_heat_map_per_head_and_the_windows(open_view, views_url):
    dom, screenshot = open_view(view="attention", text=TEXT)
    words = len(get(f"{views_url}/api/attention?text={quote(TEXT)}")[1]["models"][0]["words"])
    maps = re.findall(r'<caption>head (\d)</caption>', dom)
    assert maps == ["1", "2", "1", "2"], "two layers of two heads"
    assert dom.count('class="cell"') == 4 * words ** 2 and dom.count('class="cell window"') > 0
    assert "each word over its window of ±2" in dom
    assert pixels(screenshot, HEAT) > 4 * 200, "the largest weight of each map in full colour"


def test_the_runs_view_draws_the_curves_the_sweep_and_its_plot(open_view):
    dom, screenshot = open_view(view="runs")
    assert "gru/results.json · gru hidden=8 seed=0</h3><div class=\"hint\">6 evaluations · finished" in dom
    assert "sweep/results.jsonl · sweep of 2 jobs (2 done, 0 failed)" in dom
    assert dom.count('<polyline') >= 2 * 2 * 2 + 2, "train and validation loss and accuracy per run, a line a job"
    assert re.search(r'<img src="/api/runs/file\?path=sweep%2Fplot.svg&amp;v=\d+"', dom)
    assert "1 file or line not shown" in dom and "broken.json" in dom
    assert ink(screenshot) > 0.02
    for name, colour in CURVES.items():
        assert pixels(screenshot, colour, tolerance=8) > 30, f"no {name} curve"
    assert pixels(screenshot, PLOT_COLOUR) > 1000, "the plot is shown"


def charts(dom):
    """[(axis labels: y top, y bottom, x left, x right; the points' (cx, cy); the lines' names)] of each chart."""
    found = []
    for svg in re.findall(r'<svg [^>]*class="chart".*?</svg>', dom):
        labels = re.findall(r'fill="#555">([^<]*)</text>', svg)[:4]
        points = re.findall(r'<circle cx="([-\d.]+)" cy="([-\d.]+)"', svg)
        names = re.findall(r"<polyline[^>]*><title>([^<]*)</title>", svg)
        found.append((labels, [(float(x), float(y)) for x, y in points], names))
    return found


@pytest.fixture
def one_epoch(chromium, tmp_path):
    """(the jobs' labels from /api/runs, the DOM of the Runs view) of conftest.one_epoch_runs's folder."""
    one_epoch_runs(tmp_path / "runs")
    for url in serving(Models(runs=tmp_path / "runs")):
        jobs = [j["label"] for j in get(f"{url}/api/runs")[1]["sweeps"][0]["jobs"]]
        dom, _ = browse(chromium, f"{url}/?view=runs", tmp_path)
    return jobs, dom


def test_a_sweep_over_a_setting_shows_it_in_its_table_and_its_lines_names(one_epoch):
    """Two sweeps with --set lr=0.001 and 0.01 in one file: the table had two rows "mlp 4 2" and no
    settings column, and the chart's lines were named alike ("mlp hidden=4 seed=0" twice)."""
    jobs, dom = one_epoch
    header = re.search(r'<table class="summary"><tr>(.*?)</tr>', dom).group(1)
    assert re.findall(r"<th>([^<]*)</th>", header) == ["model", "settings", "hidden", "seeds", "test accuracy",
                                                         "F1", "AUC"], "the settings column, where minidl plot has it"
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", dom)
    assert rows == [("mlp", "lr=0.001", "4"), ("mlp", "lr=0.01", "4"), ("gru", "lr=0.01", "8")]
    names = charts(dom)[-1][2]
    assert sorted(names) == sorted(jobs) and len(set(jobs)) == 5, "each job's line is named with its lr"
    assert "mlp hidden=4 seed=1 lr=0.01" in jobs


def test_a_row_of_one_seed_shows_its_values_without_a_spread(one_epoch):
    """The std of one run is undefined: the gru row of one seed read "0.600 ± 0.000"."""
    _, dom = one_epoch
    rows = re.findall(r"<tr><td>(mlp|gru)</td>(.*?)</tr>", dom)
    cells = {model: re.findall(r"<td>([^<]*)</td>", row)[-3:] for model, row in rows}
    assert cells["gru"] == ["0.600", "0.500", "0.500"] and all("±" in cell for cell in cells["mlp"])


def test_charts_of_one_epoch_label_both_ends_of_their_axes_and_draw_the_points_inside(one_epoch):
    """A run after its first evaluation and a sweep of one epoch: every chart's end labels were drawn on each
    other ("1.001.00", "0.633" twice) and the points were put against the left (or bottom) edge."""
    _, dom = one_epoch
    (loss, _, _), (accuracy, _, _), (sweep, points, _) = charts(dom)
    for labels in (loss, accuracy, sweep):
        (y_top, y_bottom, x_left, x_right) = labels
        assert y_top != y_bottom and x_left != x_right, "the two ends of each axis are labelled apart"
        assert (x_left, x_right) == ("0.50", "1.50")
    assert loss[:2] == ["0.665", "0.601"] and charts(dom)[0][1] == [(148.0, 81.0)], "one point: in the middle"
    assert {x for x, _ in points} == {148.0} and len({y for _, y in points}) == 5
    assert '<div class="hint">1 evaluation · ' in dom, "not '1 evaluations'"


def test_each_point_names_its_line_when_hovered(one_epoch):
    """Over four lines the chart draws no legend, and a line of one point (one epoch) is too short to hover
    for its name: each point now has a tooltip with its line's name, epoch and value."""
    jobs, dom = one_epoch
    sweep = re.findall(r'<svg [^>]*class="chart".*?</svg>', dom)[-1]
    tips = re.findall(r"<circle [^>]*><title>([^<]*)</title></circle>", sweep)
    assert sorted(tip.rpartition(": ")[0] for tip in tips) == sorted(jobs)
    assert "mlp hidden=4 seed=1 lr=0.01: epoch 1, 0.610" in tips

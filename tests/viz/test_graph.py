"""minidl.viz.graph: the nodes and edges of small graphs exactly, the models' fused ops and
parameters, the summary of a 10,000-op chain, and SVG/PNG/DOT output with and without Graphviz."""
import importlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import minidl as md
from minidl.models import MODELS, build_model
from minidl.viz import FUSED_OPS, Graph, equations, graph

graph_module = importlib.import_module("minidl.viz.graph")
HAS_DOT = shutil.which("dot") is not None


def abc():
    a = md.tensor([1.0, 2.0], requires_grad=True)
    b = md.tensor([3.0, -1.0], requires_grad=True)
    c = md.tensor([0.5, 0.5], requires_grad=True)
    return a, b, c


def structure(g):
    """(label, kind) of each node, and (source label, target label, input) of each edge."""
    labels = [n["label"] for n in g.nodes]
    return ([(n["label"], n["kind"]) for n in g.nodes],
            sorted((labels[e["source"]], labels[e["target"]], e["input"]) for e in g.edges))


# --- small expressions, exactly ------------------------------------------------------------------
def test_small_expression_nodes_and_edges():
    a, b, c = abc()
    y = (a * b + c).sum()
    g = graph(y, names={"a": a, "b": b, "c": c})
    nodes, edges = structure(g)
    assert sorted(nodes) == sorted([("a", "parameter"), ("b", "parameter"), ("c", "parameter"), ("mul", "op"),
                                    ("add", "op"), ("sum", "op")])
    assert edges == [("a", "mul", 0), ("add", "sum", 0), ("b", "mul", 1), ("c", "add", 1), ("mul", "add", 0)]
    assert g.mode == "full" and not g.summarised
    assert [n["id"] for n in g.nodes] == list(range(6))
    by_label = {n["label"]: n for n in g.nodes}
    assert by_label["sum"]["root"] and not by_label["add"]["root"]
    assert by_label["mul"]["value"] == [3.0, -2.0] and by_label["add"]["value"] == [3.5, -1.5]
    assert by_label["sum"]["value"] == 2.0 and by_label["sum"]["shape"] == ()
    assert all(n["grad"] is None and n["grad_norm"] is None for n in g.nodes)      # no backward yet
    assert g.summary["ops"] == {"add": 1, "mul": 1, "sum": 1} and g.summary["longest_path"] == 3
    # every id in an edge points to an earlier node (topological order)
    assert all(e["source"] < e["target"] for e in g.edges)


def test_without_names_leaves_are_parameters_or_inputs():
    a = md.tensor([1.0, 2.0], requires_grad=True)
    data = md.tensor([4.0, 5.0])
    g = graph((a * data * 2.0).sum())
    assert structure(g)[0] == [("parameter", "parameter"), ("input", "input"), ("mul", "op"), ("mul", "op"),
                               ("sum", "op")]   # the Python number 2.0 is not a Tensor: no node


def test_gradients_after_backward_kept_and_replayed():
    a, b, c = abc()
    h = (a * b).retain_grad()
    y = (h + c).sum()
    y.backward()
    kept = {n["label"]: n for n in graph(y, names={"a": a, "b": b, "c": c}).nodes}
    assert kept["a"]["grad"] == [3.0, -1.0] and kept["b"]["grad"] == [1.0, 2.0] and kept["c"]["grad"] == [1.0, 1.0]
    assert kept["a"]["grad_norm"] == pytest.approx(np.sqrt(10.0)) and kept["a"]["grad_source"] == "leaf"
    assert kept["mul"]["grad"] == [1.0, 1.0] and kept["mul"]["grad_source"] == "retained"
    assert kept["add"]["grad"] is None and kept["sum"]["grad"] is None     # freed by the engine
    assert any(line.startswith("grad [3, -1]") for line in kept["a"]["lines"])

    before = a.grad.copy()
    replayed = {n["label"]: n for n in graph(y, names={"a": a, "b": b, "c": c}, gradients="all").nodes}
    assert replayed["add"]["grad"] == [1.0, 1.0] and replayed["sum"]["grad"] == 1.0
    assert replayed["a"]["grad"] == [3.0, -1.0] and replayed["a"]["grad_source"] == "replayed"
    np.testing.assert_array_equal(a.grad, before)             # replaying writes no .grad
    assert all(n["grad"] is None for n in graph(y, gradients=False).nodes)


def test_replayed_gradients_equal_the_engines(rng):
    """dL/d(node) from the replay equals what backward() + retain_grad() give, through
    broadcasting, matmul and a fused op."""
    x = md.tensor(rng.standard_normal((4, 3)), requires_grad=True, dtype="float64")
    W = md.tensor(rng.standard_normal((3, 5)), requires_grad=True, dtype="float64")
    bias = md.tensor(rng.standard_normal(5), requires_grad=True, dtype="float64")
    hidden = md.tanh(x @ W + bias).retain_grad()
    logits = md.linear(hidden, md.tensor(rng.standard_normal((5, 2)), dtype="float64"))
    loss = md.cross_entropy(logits, md.tensor([0, 1, 1, 0]))
    loss.backward()
    nodes = graph(loss, names={"x": x, "W": W, "bias": bias, "hidden": hidden}, gradients="all").nodes
    by_label = {n["label"]: n for n in nodes}
    for label, tensor in (("x", x), ("W", W), ("bias", bias), ("hidden = tanh", hidden)):
        assert by_label[label]["grad_norm"] == pytest.approx(np.linalg.norm(tensor.grad), rel=1e-12)
    assert by_label["linear"]["kind"] == "fused" and by_label["cross_entropy"]["kind"] == "fused"


def test_values_only_for_small_outputs():
    big = md.ones(3, 3, requires_grad=True)
    g = graph((big * 2.0).sum())
    by_label = {n["label"]: n for n in g.nodes}
    assert by_label["mul"]["value"] is None and by_label["sum"]["value"] == 18.0
    assert graph((big * 2.0).sum(), values=False).nodes[-1]["value"] is None


def test_an_input_used_twice_has_two_edges():
    x = md.tensor([1.0, -2.0, 3.0], requires_grad=True)
    g = graph((x.tanh() * x).sum(), names={"x": x})
    assert structure(g)[1] == [("mul", "sum", 0), ("tanh", "mul", 0), ("x", "mul", 1), ("x", "tanh", 0)]


def test_several_roots_and_named_interior_tensors():
    a, b, c = abc()
    y1, y2 = (a * b).sum(), (b + c).sum()
    g = graph([y1, y2], names={"y1": y1, "y2": y2, "b": b})
    labels = [n["label"] for n in g.nodes]
    assert "y1 = sum" in labels and "y2 = sum" in labels and labels.count("b") == 1
    assert sum(n["root"] for n in g.nodes) == 2


def test_arguments_are_checked():
    a, _, _ = abc()
    with pytest.raises(TypeError):
        graph(np.ones(3))
    with pytest.raises(TypeError):
        graph(a.sum(), names={"a": np.ones(2)})
    with pytest.raises(ValueError):
        graph(a.sum(), gradients="some")
    with pytest.raises(ValueError):
        graph(a.sum(), max_nodes=0)
    with pytest.raises(ValueError, match=r"values must be True or False, got 'g.svg'; to write a file, call "
                                         r"graph\(...\).save\('g.svg'\)"):
        graph(a.sum(), "g.svg")   # the path was taken as values=: nothing written, nothing said


# --- fused ops and their equations ----------------------------------------------------------------
def test_every_fused_op_has_equations():
    ops_modules = [importlib.import_module(f"minidl.autograd.ops.{m}")
                   for m in ("recurrent", "attention", "window_attention", "linalg", "losses", "layers")]
    classes = {cls.op_name(): cls for module in ops_modules for cls in vars(module).values()
               if isinstance(cls, type) and issubclass(cls, md.Function) and cls is not md.Function}
    assert FUSED_OPS <= set(classes)
    for name in FUSED_OPS:
        assert "=" in equations(classes[name]), name
    gru = equations(classes["gru"])
    assert gru.startswith("GRU") and "z_t" in gru and "h_t       = (1 − z_t)" in gru and "Elman" not in gru
    assert "relu(pre_t)" in equations(classes["elman_rnn"])
    assert "x̂ = (x − μ)" in equations(classes["layer_norm"])    # the indented lines under the first


IDS = np.array([[2, 3, 4, 5, 0, 0], [6, 2, 7, 8, 9, 3], [4, 0, 0, 0, 0, 0]])
SMALL = {"rnn": dict(hidden=3), "gru": dict(hidden=3), "mlp": dict(hidden=(4, 3)),
         "softmax": dict(hidden=(4, 3)), "attention": dict(hidden=4, radius=2, scorer_hidden=(3,)),
         "transformer": dict(d_model=4, num_heads=2, num_layers=1, d_ff=8, max_len=16, dropout=0.0)}
# the fused op that only this model has, and how many linear layers it runs
SEQUENCE_OP = {"rnn": "elman_rnn", "gru": "gru", "attention": "window_attention",
               "transformer": "scaled_dot_product_attention"}


def model_graph(name, **kwargs):
    md.manual_seed(0)
    model = build_model(name, 10, embed_dim=4, dtype="float64", **SMALL[name])
    mask = (IDS > 0).astype(np.float64)
    loss = md.cross_entropy(model(md.tensor(IDS), md.tensor(mask, dtype="float64"),
                                  md.tensor(mask.sum(axis=1).astype(np.int64))).logits, md.tensor([0, 1, 1]))
    loss.backward()
    return model, graph(loss, model=model, **kwargs)


@pytest.mark.parametrize("name", list(MODELS))
def test_models_fused_ops_are_single_nodes_and_parameters_are_named_leaves(name):
    model, g = model_graph(name)
    assert g.mode == "full"
    ops = [n["op"] for n in g.nodes if n["op"] is not None]
    fused = [n for n in g.nodes if n["kind"] == "fused"]
    assert fused and all(n["op"] in FUSED_OPS and n["count"] == 1 and n["equations"] for n in fused)
    assert all(n["fused"] == (n["kind"] == "fused") for n in g.nodes)
    assert ops.count("cross_entropy") == 1
    assert ops.count("linear") == sum(1 for m in model.modules() if type(m).__name__ == "Linear")
    if name in SEQUENCE_OP:
        assert ops.count(SEQUENCE_OP[name]) == 1
    if name == "gru":   # the gates are inside the one node, not ops of their own
        assert "sigmoid" not in ops and "tanh" not in ops
    parameters = [n for n in g.nodes if n["kind"] == "parameter"]
    expected = dict(model.named_parameters())
    assert sorted(n["name"] for n in parameters) == sorted(expected)
    for n in parameters:
        assert n["label"] == n["name"] and n["shape"] == tuple(expected[n["name"]].shape)
        assert n["grad_norm"] == pytest.approx(np.linalg.norm(expected[n["name"]].grad))
    assert {p["name"] for p in g.summary["parameters"]} == set(expected)


def test_expand_draws_the_equations_inside_the_box():
    _, g = model_graph("gru", expand=True)
    node = next(n for n in g.nodes if n["op"] == "gru")
    assert node["lines"][0] == "gru  (fused)" and "" in node["lines"]
    assert any(line.startswith("z_t") for line in node["lines"])
    _, plain = model_graph("gru")
    assert not any(line.startswith("z_t") for n in plain.nodes for line in n["lines"])


# --- big graphs -------------------------------------------------------------------------------
def chain(n):
    x = md.tensor([1.0], requires_grad=True)
    h = x
    for _ in range(n):
        h = h * 1.0001
    return x, h


def test_a_10000_op_chain_is_summarised():
    x, h = chain(10_000)
    g = graph(h, names={"x": x})
    assert g.summarised and g.mode == "collapsed" and len(g.nodes) <= 400
    assert g.summary["num_ops"] == 10_000 and g.summary["ops"] == {"mul": 10_000}
    assert g.summary["longest_path"] == 10_000 and g.summary["num_leaves"] == 1
    assert g.summary["parameters"] == [{"name": "x", "shape": (1,)}]
    repeat = next(n for n in g.nodes if n["kind"] == "repeat")
    assert repeat["label"] == "mul ×10000" and repeat["count"] == 10_000
    assert [(e["source"], e["target"]) for e in g.edges] == [(0, 1)]
    assert "10000 ops" in "\n".join(g.caption())
    ET.fromstring(g.to_svg(engine="builtin").encode("utf-8"))


def test_a_repeated_block_of_several_ops_is_one_node():
    w = md.tensor([0.5, 0.2], requires_grad=True)
    b = md.tensor([0.1, 0.0], requires_grad=True)
    h = md.tensor([1.0, 2.0])
    for _ in range(50):
        h = (h * w + b).tanh()
    g = graph(h.sum(), names={"w": w, "b": b}, max_nodes=20)
    assert g.mode == "collapsed"
    nodes, edges = structure(g)
    assert ("[mul → add → tanh] ×50", "repeat") in nodes
    assert ("w", "[mul → add → tanh] ×50", None) in edges and ("b", "[mul → add → tanh] ×50", None) in edges
    assert g.summary["ops"] == {"add": 50, "mul": 50, "tanh": 50, "sum": 1}


def test_a_big_graph_without_repeats_is_only_its_summary():
    leaves = [md.tensor([float(i)], requires_grad=True) for i in range(40)]
    total = leaves[0] * leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf * leaf
    g = graph(total, max_nodes=50)
    assert g.mode == "summary" and g.summarised and len(g.nodes) == 1 and g.edges == []
    assert g.nodes[0]["kind"] == "summary" and g.summary["ops"] == {"mul": 40, "add": 39}
    assert g.summary["num_parameters"] == 40 and g.summary["longest_path"] == 40
    assert "ops: mul ×40, add ×39" in g.nodes[0]["lines"]
    ET.fromstring(g.to_svg(engine="builtin").encode("utf-8"))
    assert g.to_dot().count(" -> ") == 0


# --- output -------------------------------------------------------------------------------------
def drawings():
    a, b, c = abc()
    _, gru = model_graph("gru", expand=True)
    _, transformer = model_graph("transformer", gradients="all")
    quoted = md.tensor([1.0], requires_grad=True)
    return [graph((a * b + c).sum(), names={"a": a, "b & <c>": b, 'say "c"': c}), gru, transformer,
            graph(chain(500)[1], max_nodes=10), graph(quoted * quoted, max_nodes=1)]


def check_svg(text, g):
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag.endswith("svg")
    all_text = "".join(root.itertext())
    for node in g.nodes:
        assert node["lines"][0].strip().split()[0] in all_text


def test_svg_is_well_formed_without_graphviz(monkeypatch):
    for g in drawings():
        check_svg(g.to_svg(engine="builtin"), g)
    monkeypatch.setattr(shutil, "which", lambda name: None)   # as on a machine without Graphviz
    g = drawings()[0]
    assert 'class="node' in g.to_svg()                          # "auto" falls back to the built-in layout
    assert 'class="node' in g._repr_svg_()
    with pytest.raises(RuntimeError, match="Graphviz"):
        g.to_svg(engine="dot")


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_svg_is_well_formed_with_graphviz():
    for g in drawings():
        check_svg(g.to_svg(engine="dot"), g)


def test_dot_text():
    g = drawings()[0]
    text = g.to_dot()
    assert text.startswith("digraph minidl {") and text.rstrip().endswith("}")
    assert text.count(" -> ") == len(g.edges) and "rankdir=LR" in text
    assert '\\"c\\"' in text                                     # quotes escaped
    if HAS_DOT:
        subprocess.run(["dot", "-Tsvg"], input=text.encode("utf-8"), capture_output=True, check=True)


def test_save_writes_svg_png_and_dot(tmp_path):
    g = drawings()[1]
    assert g.save(tmp_path / "g.svg", engine="builtin") == str(tmp_path / "g.svg")
    ET.parse(tmp_path / "g.svg")
    g.save(tmp_path / "g.png", engine="builtin")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    g.save(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == g.to_dot()
    if HAS_DOT:
        g.save(tmp_path / "d.png", engine="dot")
        assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        g.save(tmp_path / "g.jpg")
    with pytest.raises(ValueError):
        g.to_svg(engine="neato")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.svg", "g.png", "g.dot"]
                                                               + (["d.png"] if HAS_DOT else []))


def test_layout_keeps_boxes_apart_and_inside():
    from minidl.viz.layout import layout

    _, g = model_graph("transformer")
    boxes, width, height = layout(g.nodes, g.edges)
    assert set(boxes) == {n["id"] for n in g.nodes}
    for x, y, w, h in boxes.values():
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
    for e in g.edges:   # an input is drawn left of its consumer
        assert boxes[e["source"]][0] + boxes[e["source"]][2] < boxes[e["target"]][0]
    items = sorted(boxes.values())
    for i, (x1, y1, w1, h1) in enumerate(items):
        for x2, y2, w2, h2 in items[i + 1:]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1


def drawn_boxes_and_edges(svg):
    """The node boxes (x, y, width, height) of a built-in SVG drawing, and points along each edge's
    path: its M and L points, and 20 on each cubic Bézier (C)."""
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(svg.encode("utf-8"))
    boxes = [tuple(float(g.find(ns + "rect").get(k)) for k in ("x", "y", "width", "height"))
             for g in root.iter(ns + "g") if "node" in g.get("class", "")]
    edges = []
    for path in root.findall(ns + "path"):
        points = []
        for code, numbers in re.findall(r"([MLC])([^MLC]*)", path.get("d")):
            xy = [tuple(map(float, pair.split(","))) for pair in numbers.split()]
            if code == "C":
                p0, (p1, p2, p3) = points[-1], xy
                xy = [tuple((1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t * t * c + t ** 3 * d
                            for a, b, c, d in zip(p0, p1, p2, p3)) for t in np.linspace(0, 1, 21)[1:]]
            points.extend(xy)
        edges.append(points)
    return boxes, edges


def test_an_edge_that_skips_a_column_goes_round_the_boxes_in_between():
    """x -> mul in tanh(x) * x ran in a straight curve through the tanh box, drawn under it: the
    picture read tanh(x) * tanh(x) (and x + tanh(exp(x * 3)) read add(tanh, tanh)). No edge may pass
    through a box (its own input's and consumer's included: it starts and ends on their sides)."""
    x = md.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    y = (x.tanh() * x).sum()
    y.backward()
    z = x + (x * 3).exp().tanh()
    _, transformer = model_graph("transformer")
    for g in (graph(y, names={"x": x, "y": y}, gradients="all"), graph(z, names={"x": x, "z": z}), transformer):
        boxes, edges = drawn_boxes_and_edges(g.to_svg(engine="builtin"))
        assert len(boxes) == len(g.nodes) and len(edges) == len(g.edges)
        for points in edges:
            for px, py in points:
                inside = [box for box in boxes if box[0] + 1 < px < box[0] + box[2] - 1
                          and box[1] + 1 < py < box[1] + box[3] - 1]
                assert not inside, ((px, py), inside)


def test_repr_and_types():
    g = drawings()[0]
    assert isinstance(g, Graph) and repr(g).startswith("Graph(6 nodes, 5 edges, full")
    assert graph_module.SMALL == 8


def test_import_minidl_does_not_load_viz_and_viz_does_not_load_matplotlib():
    code = ("import sys, minidl; a = 'minidl.viz' in sys.modules; import minidl.viz; "
            "print(a, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]

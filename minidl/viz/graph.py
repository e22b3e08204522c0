"""``graph(tensor)``: the autograd graph that produced a tensor, as plain data and as a picture.

    import minidl as md
    from minidl.viz import graph

    x = md.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    y = (x.tanh() * x).sum()
    y.backward()
    g = graph(y, names={"x": x, "y": y})
    g.nodes, g.edges          # dicts: what a test or a web page reads
    g.save("graph.svg")       # also .png and .dot; in Jupyter the Graph draws itself

What the picture shows, and why it looks the way it does:

* **One node per op.** Every tensor made by an op is ONE node labelled with the op's public name
  (``ctx.fn.op_name()``: ``mul``, ``tanh``, ``linear``) and its output shape -- the op and the
  value it produced are the same thing in the graph, so micrograd's separate value and op
  boxes are merged. Small outputs (at most ``SMALL`` = 8 numbers) also show their values.
* **Leaves.** A leaf that requires grad is a *parameter* (green); one that does not is an
  *input or constant* (grey: data, targets, masks). With ``model=`` the parameters (and
  buffers) get the names ``model.named_parameters()`` gives them; ``names=`` names any other
  tensor (``{"x": x}``). A frozen parameter (requires_grad=False) is drawn as a constant,
  under its name. A Python number in an op (the ``2`` of ``x * 2``) is not a Tensor,
  is not in the graph, and is not drawn.
* **Fused ops** (``FUSED_OPS``: the GRU and Elman sequences, window attention, scaled
  dot-product attention, linear, layer norm and the two losses) are each ONE node, marked
  "fused", exactly as the engine sees them: one forward, one hand-written backward. The
  equations they stand for come from their docstrings (``equations(fn)``): in the node's
  ``equations`` field, as the tooltip of the SVG, and drawn inside the box with ``expand=True``.
* **Gradients.** ``gradients=True`` (the default) shows what the engine kept after
  ``backward()``: ``.grad`` of the leaves (accumulated over every backward since the last
  zero_grad) and of the tensors that called ``retain_grad()``; the engine frees every other
  interior gradient as soon as it has used it, so those nodes show none.
  ``gradients="all"`` replays the backward walk from the drawn tensor(s), seeded with ones
  (the gradient of ``tensor.sum()``), calling each op's hand-written backward again without
  touching any ``.grad``: every node then shows dL/d(node), as micrograd's picture does. A
  node's gradient is printed in full when it is small, else as its L2 norm ``‖grad‖``.
* **Big graphs.** A graph of more than ``max_nodes`` nodes is not drawn in full. First,
  runs of repeated structure along a chain (the same op, or the same short sequence of ops,
  k ≥ 3 times in a row, each step feeding only the next) become one node "mul ×k" (showing
  the shape and gradient of its last step, and one edge from each leaf it reads); if the
  graph then fits, it is drawn so, with a caption. If not, the drawing is the summary alone:
  the number of ops of each name, the longest path, the parameters. ``Graph.summary`` holds
  those numbers in every case; ``Graph.mode`` says which of "full", "collapsed" or
  "summary" was drawn. All of it is one pass over the graph (a 10,000-op chain takes a few
  hundredths of a second).

The drawing itself: Graphviz's ``dot`` when it is installed, else minidl's own layered layout
(``minidl.viz.layout``: no new dependency), chosen with ``engine="auto" | "dot" | "builtin"``.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np

from ..autograd.broadcast import unbroadcast
from ..autograd.tensor import Tensor
from ..io import atomic_path
from . import layout

SMALL = 8            # outputs (and gradients) with at most this many numbers are printed in full
MIN_REPEATS = 3      # a block repeated fewer times than this along a chain is left as it is
MAX_PERIOD = 6       # the longest block of ops recognised as repeating (ops per repetition)

# The ops that are ONE node standing for many elementary steps (their equations: ``equations``).
FUSED_OPS = frozenset({"elman_rnn", "gru", "window_attention", "scaled_dot_product_attention", "linear",
                       "layer_norm", "cross_entropy", "binary_cross_entropy_with_logits"})

KINDS = ("parameter", "input", "op", "fused", "repeat", "summary")


# --- the fused ops' equations ----------------------------------------------------------
def equations(fn):
    """The lines of a fused op's documentation that state what it computes.

    From the Function's own docstring, else its module's (the recurrences and the attentions
    document their equations there): the first line, then the first indented paragraph of
    equations -- or, where a paragraph is headed by the op's name (the module that holds both
    the Elman RNN and the GRU), that paragraph alone."""
    doc = fn.__dict__.get("__doc__") or getattr(sys.modules.get(fn.__module__), "__doc__", None)
    if not doc:
        return ""
    doc = _dedent(doc)
    paragraphs = [p for p in re.split(r"\n\s*\n", doc) if p.strip()]
    name = fn.op_name()
    for paragraph in paragraphs:
        heading = paragraph.splitlines()[0].strip().lower().replace(" ", "_")
        if heading.startswith(name) and _has_equations(paragraph):
            return _tidy(paragraph)
    for paragraph in paragraphs[1:]:
        if _has_equations(paragraph):
            return paragraphs[0].splitlines()[0].strip() + "\n" + _tidy(paragraph)
    return _tidy(paragraphs[0])


def _dedent(doc):
    """The docstring with its source indentation removed, and no more: the margin is that of the
    closing quotes when they sit on a line of their own (so equations indented under a first
    line of prose stay indented), else the smallest indentation after the first line."""
    lines = doc.expandtabs().splitlines()
    if len(lines) > 1 and not lines[-1].strip():
        margin = len(lines[-1])
    else:
        margin = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()), default=0)
    body = [line[min(margin, len(line) - len(line.lstrip())):] for line in lines[1:]]
    return "\n".join([lines[0].strip(), *body]).strip("\n")


def _has_equations(paragraph):
    return any(line.startswith("    ") and "=" in line for line in paragraph.splitlines())


def _tidy(paragraph):
    """A heading line stays; the indented lines under it lose their common indentation."""
    lines = paragraph.splitlines()
    head = [] if lines[0].startswith(" ") else [lines[0].strip()]
    body = textwrap.dedent("\n".join(lines[len(head):])).splitlines()
    return "\n".join(head + [line.rstrip() for line in body])


# --- walking the graph -------------------------------------------------------------------
def _walk(roots):
    """Every tensor the roots depend on, inputs before outputs, and each one's Tensor inputs.

    Unlike the engine's ``topological_order`` this keeps the inputs that need no gradient
    (data, targets, masks): they are part of the picture. An explicit stack, no recursion."""
    order, seen = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        if tensor._ctx is not None:
            stack.extend((p, False) for p in reversed(tensor._ctx.parents) if p is not None and id(p) not in seen)
    index = {id(t): i for i, t in enumerate(order)}
    parents = [[(index[id(p)], position) for position, p in enumerate(t._ctx.parents) if p is not None]
               if t._ctx is not None else [] for t in order]
    return order, parents


def _depths(parents):
    """Ops on the longest path from a leaf to each tensor (a leaf: 0)."""
    depth = [0] * len(parents)
    for i, inputs in enumerate(parents):
        if inputs:
            depth[i] = 1 + max(depth[p] for p, _ in inputs)
    return depth


def _names(model, names):
    """{id(tensor): name} from the model's parameters and buffers, then ``names`` (which wins)."""
    found = {}
    if model is not None:
        for name, tensor in (*model.named_parameters(), *model.named_buffers()):
            found.setdefault(id(tensor), name)
    for name, tensor in (names or {}).items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"graph: names[{name!r}] must be a minidl Tensor, got {type(tensor).__name__}")
        found[id(tensor)] = name
    return found


# --- collapsing repeated structure -------------------------------------------------------
def _chains(order, parents):
    """Maximal chains of ops in which each op's only op input is the previous op of the chain
    and each op but the last feeds nothing else: the spine of a repeated computation."""
    n = len(order)
    consumers = Counter(p for inputs in parents for p in {source for source, _ in inputs})   # ops reading each tensor
    successor = [-1] * n
    has_predecessor = [False] * n
    for i, inputs in enumerate(parents):
        op_inputs = {p for p, _ in inputs if parents[p]}
        if len(op_inputs) == 1:
            (u,) = op_inputs
            if consumers[u] == 1:
                successor[u], has_predecessor[i] = i, True
    chains = []
    for i in range(n):
        if parents[i] and not has_predecessor[i]:
            chain = [i]
            while successor[chain[-1]] >= 0:
                chain.append(successor[chain[-1]])
            chains.append(chain)
    return chains


def _repeats(ops, start):
    """(period, times) of the longest run of one block of ops repeated from ``start``; (1, 1) if none."""
    best = (1, 1)
    for period in range(1, min(MAX_PERIOD, len(ops) - start) + 1):
        block = ops[start:start + period]
        times = 1
        while ops[start + times * period:start + (times + 1) * period] == block:
            times += 1
        if times >= MIN_REPEATS and period * times > best[0] * best[1]:
            best = (period, times)
    return best


def _groups(order, parents, op_names):
    """Each tensor's group: runs of repeated blocks along a chain share one; the rest are alone.

    Returns (groups: lists of tensor indices in order, group_of: tensor index -> group, and
    per group (period, times))."""
    found = []   # (members, (period, times))
    for chain in _chains(order, parents):
        ops = [op_names[i] for i in chain]
        start = 0
        while start < len(chain):
            period, times = _repeats(ops, start)
            found.append((chain[start:start + period * times], (period, times)))
            start += period * times
    grouped = {i for members, _ in found for i in members}
    found += [([i], (1, 1)) for i in range(len(order)) if i not in grouped]
    # a group's members end before any consumer of its output: order the groups by their last member
    found.sort(key=lambda group: group[0][-1])
    group_of = [0] * len(order)
    for g, (members, _) in enumerate(found):
        for i in members:
            group_of[i] = g
    return [members for members, _ in found], group_of, [shape for _, shape in found]


# --- gradients ------------------------------------------------------------------------------
def _replayed_gradients(order, roots):
    """{id(tensor): dL/d(tensor) as a NumPy array} for every tensor that gets one, L = Σ roots'
    sums: the engine's backward walk again, each op's hand-written backward called once more
    (the graph is kept, see ``engine``), nothing written into any ``.grad``."""
    grads = {id(r): r.xp.ones_like(r.data) for r in roots if r.requires_grad}
    found = {}
    for tensor in reversed(order):
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        found[id(tensor)] = tensor.xp.to_numpy(g)
        ctx = tensor._ctx
        if ctx is None:
            continue
        input_grads = ctx.fn.backward(ctx, g)
        input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
        for parent, g_in in zip(ctx.parents, input_grads):
            if parent is None or g_in is None or not parent.requires_grad:
                continue
            if tuple(g_in.shape) != tuple(parent.shape):
                g_in = unbroadcast(parent.xp, g_in, parent.shape)
            key = id(parent)
            grads[key] = g_in if key not in grads else grads[key] + g_in
    return found


def _kept_gradient(tensor, replayed):
    """(gradient as NumPy, where it came from) or (None, None)."""
    if replayed is not None:
        g = replayed.get(id(tensor))
        return (g, "replayed") if g is not None else (None, None)
    if tensor.grad is None:
        return None, None
    return tensor.xp.to_numpy(tensor.grad), ("leaf" if tensor._ctx is None else "retained")


# --- one node ------------------------------------------------------------------------------
def _format(array):
    """A small array on one line: 0.7616 or [0.7616, -1.928, 2.985]."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1) if array.dtype.kind in "fc" else array.reshape(-1)
    text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat.tolist())
    return text if array.ndim == 0 else f"[{text}]"


def _kind(tensor, op, times):
    if times > 1:
        return "repeat"
    if op is not None:
        return "fused" if op in FUSED_OPS else "op"
    return "parameter" if tensor.requires_grad else "input"


class _NodeMaker:
    """Builds the node dict of a group of tensors (a single tensor, or a repeated block)."""

    def __init__(self, roots, names, values, gradients, expand, replayed):
        self.roots = {id(r) for r in roots}
        self.names, self.values, self.gradients, self.expand = names, values, gradients, expand
        self.replayed = replayed

    def make(self, node_id, members, ops, period, times):
        tensor = members[-1]  # a block stands for its last output
        op = ops[-1]
        count = len(members) if op is not None else 0
        kind = _kind(tensor, op, times)
        name = self.names.get(id(tensor))
        node = {"id": node_id, "kind": kind, "op": op, "name": name, "shape": tuple(tensor.shape),
                "dtype": tensor.dtype, "requires_grad": tensor.requires_grad, "count": count,
                "root": id(tensor) in self.roots, "fused": kind == "fused",
                "equations": equations(tensor._ctx.fn) if kind == "fused" else None,
                "label": self._label(kind, op, ops[:period], times, name),
                "value": None, "grad": None, "grad_norm": None, "grad_source": None}
        small = tensor.xp.size(tensor.data) <= SMALL
        if self.values and small and kind != "repeat":
            node["value"] = tensor.numpy().tolist()
        grad, source = _kept_gradient(tensor, self.replayed) if self.gradients else (None, None)
        if grad is not None:
            node.update(grad_norm=float(np.linalg.norm(np.asarray(grad, dtype=np.float64))), grad_source=source,
                        grad=grad.tolist() if small else None)
        node["lines"] = self._lines(node)
        return node

    @staticmethod
    def _label(kind, op, block, times, name):
        if kind == "repeat":
            inner = block[0] if len(block) == 1 else "[" + " → ".join(block) + "]"
            return f"{inner} ×{times}"
        if op is None:
            return name or ("parameter" if kind == "parameter" else "input")
        return f"{name} = {op}" if name else op

    def _lines(self, node):
        """The text drawn in the node's box, first line the label."""
        kind = node["kind"]
        first = node["label"] + ("  (fused)" if kind == "fused" else "")
        shape = str(node["shape"]) if node["dtype"] == "float32" else f"{node['shape']} {node['dtype']}"
        lines = [first, shape + (" (last step)" if kind == "repeat" else "")]
        if node["value"] is not None:
            lines.append("data " + _format(np.asarray(node["value"])))
        if node["grad"] is not None:
            lines.append("grad " + _format(np.asarray(node["grad"])))
        elif node["grad_norm"] is not None:
            lines.append(f"‖grad‖ {node['grad_norm']:.4g}")
        if kind == "fused" and self.expand and node["equations"]:
            lines.append("")
            lines.extend(node["equations"].splitlines())
        return lines


# --- the summary -----------------------------------------------------------------------------
def _summary(order, op_names, depth, names, max_nodes):
    ops = Counter(name for name in op_names if name is not None)
    parameters = [{"name": names.get(id(t)), "shape": tuple(t.shape)}
                  for t in order if t._ctx is None and t.requires_grad]
    return {"num_tensors": len(order), "num_ops": sum(ops.values()), "num_leaves": len(order) - sum(ops.values()),
            "ops": dict(sorted(ops.items(), key=lambda item: (-item[1], item[0]))),
            "longest_path": max(depth, default=0), "num_parameters": len(parameters),
            "parameter_elements": sum(math.prod(p["shape"]) for p in parameters),
            "parameters": parameters, "max_nodes": max_nodes}


def summary_lines(summary, limit=12):
    """The summary as lines of text (the caption of a collapsed drawing, the box of a summary)."""
    lines = [f"{summary['num_ops']} ops, {summary['num_leaves']} leaves; longest path {summary['longest_path']} ops",
             "ops: " + ", ".join(f"{name} ×{n}" for name, n in list(summary["ops"].items())[:limit])
             + (", …" if len(summary["ops"]) > limit else "")]
    params = summary["parameters"]
    if params:
        lines.append(f"{len(params)} parameters ({summary['parameter_elements']} numbers):")
        named = [p for p in params if p["name"]]
        lines.extend(f"  {p['name']} {p['shape']}" for p in named[:limit])
        if len(named) > limit:
            lines.append(f"  … and {len(named) - limit} more named")
        unnamed = Counter(p["shape"] for p in params if not p["name"])
        lines.extend(f"  unnamed {shape} ×{n}" for shape, n in list(unnamed.items())[:limit])
        if len(unnamed) > limit:
            lines.append(f"  … and {len(unnamed) - limit} more shapes")
    return lines


# --- the public function ---------------------------------------------------------------------
def graph(tensor, values=True, gradients=True, max_nodes=400, model=None, names=None, expand=False):
    """The autograd graph that produced ``tensor`` (or a list of tensors), as a ``Graph``.

    values     -- print the values of outputs with at most ``SMALL`` numbers
    gradients  -- True: the gradients the engine kept (leaves, retain_grad()); "all": replay
                  the backward for every node (see the module docstring); False: none
    max_nodes  -- draw at most this many nodes: collapse repeats, else draw only the summary
    model      -- a Module: its parameters and buffers are named as ``named_parameters()`` says
    names      -- {name: tensor} for any other tensor worth a name (an input, the loss)
    expand     -- draw the equations of each fused op inside its box
    """
    roots = _checked_roots(tensor, values, gradients, max_nodes)
    order, parents = _walk(roots)
    op_names = [t._ctx.fn.op_name() if t._ctx is not None else None for t in order]
    found_names = _names(model, names)
    summary = _summary(order, op_names, _depths(parents), found_names, int(max_nodes))
    mode, groups, group_of, blocks = _grouping(order, parents, op_names, max_nodes)
    if mode == "summary":
        return Graph([_summary_node(summary)], [], mode, summary)
    replayed = _replayed_gradients(order, roots) if gradients == "all" else None
    maker = _NodeMaker(roots, found_names, values, gradients, expand, replayed)
    nodes = [maker.make(g, [order[i] for i in members], [op_names[i] for i in members], *blocks[g])
             for g, members in enumerate(groups)]
    return Graph(nodes, _edges(groups, group_of, parents), mode, summary)


def _checked_roots(tensor, values, gradients, max_nodes):
    roots = list(tensor) if isinstance(tensor, (list, tuple)) else [tensor]
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError("graph: expected a minidl Tensor or a list of Tensors")
    if values not in (True, False):   # graph(y, "g.svg") took the path as values= and wrote nothing
        save = f"; to write a file, call graph(...).save({os.fspath(values)!r})" if isinstance(
            values, (str, os.PathLike)) else ""
        raise ValueError(f"graph: values must be True or False, got {values!r}{save}")
    if gradients not in (True, False, "all"):
        raise ValueError(f'graph: gradients must be True, False or "all", got {gradients!r}')
    if int(max_nodes) < 1:
        raise ValueError(f"graph: max_nodes must be at least 1, got {max_nodes}")
    return roots


def _grouping(order, parents, op_names, max_nodes):
    """(mode, groups, group_of, (period, times) of each group): every tensor alone while the
    graph fits in ``max_nodes``, else repeats collapsed, else (mode "summary") nothing drawn."""
    n = len(order)
    if n <= max_nodes:
        return "full", [[i] for i in range(n)], list(range(n)), [(1, 1)] * n
    groups, group_of, blocks = _groups(order, parents, op_names)
    return ("collapsed" if len(groups) <= max_nodes else "summary"), groups, group_of, blocks


def _summary_node(summary):
    """The one node of a graph too big to draw: the summary as its text, no tensor behind it."""
    node = dict.fromkeys(("op", "name", "shape", "dtype", "equations", "value", "grad", "grad_norm", "grad_source"))
    node.update(id=0, kind="summary", label="summary", requires_grad=False, count=summary["num_ops"], root=True,
                fused=False, lines=[f"graph too big to draw: {summary['num_tensors']} tensors > max_nodes = "
                                    f"{summary['max_nodes']}", "", *summary_lines(summary)])
    return node


def _edges(groups, group_of, parents):
    """One edge per (input node, consumer node, input position); inside a collapsed block the
    positions are dropped and repeated edges merged."""
    edges = {}   # (source, target, input) -> the edge, in the order first found
    for g, members in enumerate(groups):
        block = len(members) > 1
        for i in members:
            for p, position in parents[i]:
                source = group_of[p]
                if source != g:
                    key = (source, g, None if block else position)
                    edges.setdefault(key, {"source": source, "target": g, "input": key[2]})
    return list(edges.values())


# --- the Graph -------------------------------------------------------------------------------
class Graph:
    """The graph of ``graph(...)``: ``nodes`` and ``edges`` as plain dicts, and its drawings.

    nodes   -- [{"id", "label", "kind" (one of KINDS), "op", "name", "shape", "dtype",
                 "requires_grad", "count" (ops it stands for), "root", "fused", "equations",
                 "value", "grad", "grad_norm", "grad_source", "lines" (the text drawn)}, ...]
                in topological order (inputs first); ids are the positions in this list
    edges   -- [{"source": id, "target": id, "input": position of the input, or None}, ...]
    mode    -- "full", "collapsed" (repeats drawn as one node) or "summary" (only the summary)
    summary -- counts per op name, longest path, parameters: always, whatever the mode
    """

    def __init__(self, nodes, edges, mode, summary):
        self.nodes, self.edges, self.mode, self.summary = nodes, edges, mode, summary

    @property
    def summarised(self):
        """True when not every op is drawn as its own node."""
        return self.mode != "full"

    def __repr__(self):
        return (f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges, {self.mode}; "
                f"{self.summary['num_ops']} ops, longest path {self.summary['longest_path']})")

    def caption(self):
        """The text under a collapsed drawing (empty for a full one)."""
        if self.mode != "collapsed":
            return []
        return [f"repeated blocks collapsed: {self.summary['num_tensors']} tensors > max_nodes = "
                f"{self.summary['max_nodes']}", *summary_lines(self.summary)]

    # --- drawings ---
    def to_dot(self):
        """Graphviz DOT text (left to right, as micrograd's draw_dot)."""
        return layout.dot_text(self.nodes, self.edges, self.caption())

    def to_svg(self, engine="auto"):
        """SVG text: by Graphviz's ``dot`` when installed (engine "auto" or "dot"), else (or with
        engine="builtin") by minidl's own layered layout."""
        if _use_dot(engine):
            return _run_dot(self.to_dot(), "svg").decode("utf-8")
        return layout.svg_text(self.nodes, self.edges, self.caption())

    def _repr_svg_(self):
        return self.to_svg()

    def save(self, path, engine="auto"):
        """Write .svg, .png or .dot (by the extension), atomically; returns the path."""
        path = os.fspath(path)
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext not in ("svg", "png", "dot", "gv"):
            raise ValueError(f"Graph.save: unknown format {ext!r}; give a path ending in .svg, .png or .dot")
        with atomic_path(path) as tmp:
            if ext != "png":
                Path(tmp).write_bytes((self.to_svg(engine) if ext == "svg" else self.to_dot()).encode("utf-8"))
            elif _use_dot(engine):
                Path(tmp).write_bytes(_run_dot(self.to_dot(), "png"))
            else:
                layout.draw_png(tmp, self.nodes, self.edges, self.caption())
        return path


def _use_dot(engine):
    if engine not in ("auto", "dot", "builtin"):
        raise ValueError(f'engine must be "auto", "dot" or "builtin", got {engine!r}')
    if engine == "dot" and shutil.which("dot") is None:
        raise RuntimeError('engine="dot" needs Graphviz\'s dot program on the PATH; use engine="builtin"')
    return engine == "dot" or (engine == "auto" and shutil.which("dot") is not None)


def _run_dot(text, fmt):
    result = subprocess.run([shutil.which("dot"), f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                            timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed: {result.stderr.decode('utf-8', 'replace').strip()}")
    return result.stdout

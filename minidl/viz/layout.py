"""Drawing a graph without Graphviz: a layered layout, written as SVG text or drawn by matplotlib.

The layout is the classic one for data-flow graphs (Sugiyama's, much simplified), left to right
like micrograd's pictures:

1. **Layers.** An op goes one column after the last of its inputs (the longest path from the
   leaves); a leaf goes in the column just before its first consumer, so a parameter read late
   (the classifier's weight) sits next to the op that reads it, not in column 0.
2. **Order in a column.** Each node's key is the barycentre (mean position) of its inputs,
   sweeping left to right, then of its consumers, sweeping back; sorting by it untangles most
   crossings. Separate graphs (several roots) stay in separate bands.
3. **Positions.** Each node is pulled to the mean height of its inputs (a leaf: of its
   consumers) and pushed apart from its neighbours where the boxes would overlap.

Boxes are sized from their text in a monospace font (``CHAR_W`` pixels a character); lines after
an empty line (a fused op's equations) are left-aligned, the others centred. The SVG and the
PNG share every coordinate, so they show the same picture.
"""
from __future__ import annotations

from itertools import accumulate
from xml.sax.saxutils import escape, quoteattr

FONT_PX = 12
CHAR_W = 7.23          # DejaVu Sans Mono's advance (0.602 em) at FONT_PX
LINE_H = 15
PAD_X, PAD_Y = 9, 6
RANK_GAP, NODE_GAP, MARGIN = 46, 14, 16
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# kind -> (fill, border): green parameters, grey inputs, blue ops, orange fused ops, violet repeats
COLOURS = {"parameter": ("#d9f0d3", "#3c8d2f"), "input": ("#eeeeee", "#8a8a8a"), "op": ("#dde8f6", "#3b6fb6"),
           "fused": ("#fde3c3", "#d9822b"), "repeat": ("#e9def7", "#7d5ba6"), "summary": ("#ffffff", "#555555")}
LEGEND = {"parameter": "parameter", "input": "input / constant", "op": "op", "fused": "fused op (one node)",
          "repeat": "repeated block"}
EDGE_COLOUR = "#777777"


def box_size(lines):
    width = max((len(line) for line in lines), default=1) * CHAR_W + 2 * PAD_X
    return width, len(lines) * LINE_H + 2 * PAD_Y


# --- 1. layers ---------------------------------------------------------------------------------
def _neighbours(n, edges):
    parents, children = [[] for _ in range(n)], [[] for _ in range(n)]
    for e in edges:
        parents[e["target"]].append(e["source"])
        children[e["source"]].append(e["target"])
    return parents, children


def _layers(n, parents, children):
    """Column of each node; node ids are in topological order (inputs first)."""
    layer = [0] * n
    for v in range(n):
        if parents[v]:
            layer[v] = 1 + max(layer[p] for p in parents[v])
    for v in range(n):
        if not parents[v] and children[v]:
            layer[v] = min(layer[c] for c in children[v]) - 1
    low = min(layer, default=0)
    return [v - low for v in layer]


def _components(n, edges):
    """Component id of each node (union-find), numbered in order of first appearance."""
    root = list(range(n))

    def find(v):
        while root[v] != v:
            root[v] = root[root[v]]
            v = root[v]
        return v

    for e in edges:
        a, b = find(e["source"]), find(e["target"])
        if a != b:
            root[max(a, b)] = min(a, b)
    return [find(v) for v in range(n)]


# --- 2. order in a column ------------------------------------------------------------------------
def _order(layer, parents, children, component):
    columns = [[] for _ in range(max(layer, default=0) + 1)]
    for v in range(len(layer)):
        columns[layer[v]].append(v)
    place = {}

    def refresh(column):
        for i, v in enumerate(column):
            place[v] = (i + 0.5) / len(column)

    for column in columns:
        refresh(column)

    def sweep(in_order, primary, secondary):
        for column in in_order:
            keys = {v: _mean([place[u] for u in (primary[v] or secondary[v])], place[v]) for v in column}
            column.sort(key=lambda v: (component[v], keys[v]))
            refresh(column)

    sweep(columns, parents, children)
    sweep(reversed(columns), children, parents)
    sweep(columns, parents, children)
    return columns


def _mean(values, default):
    return sum(values) / len(values) if values else default


# --- 3. positions --------------------------------------------------------------------------------
def _spread(column, desired, heights):
    """Centres as close to ``desired`` as the boxes allow, in the column's order."""
    centres = []
    for i, v in enumerate(column):
        low = centres[-1] + (heights[column[i - 1]] + heights[v]) / 2 + NODE_GAP if centres else float("-inf")
        centres.append(max(desired[v], low))
    shift = _mean([desired[v] - c for v, c in zip(column, centres)], 0.0)
    return {v: c + shift for v, c in zip(column, centres)}


def _centres(columns, parents, children, heights):
    """The vertical centre of every node: stacked, then pulled towards its neighbours."""
    y = {}
    for column in columns:  # first, stacked
        top = 0.0
        for v in column:
            y[v] = top + heights[v] / 2
            top += heights[v] + NODE_GAP
    for column in columns:  # then pulled towards their inputs, left to right
        y.update(_spread(column, {v: _mean([y[p] for p in parents[v]], y[v]) for v in column}, heights))
    for column in reversed(columns):  # and the leaves towards their consumers
        y.update(_spread(column, {v: y[v] if parents[v] else _mean([y[c] for c in children[v]], y[v])
                                  for v in column}, heights))
    return y


def layout(nodes, edges):
    """{id: (x, y, width, height)} of every node's box (top-left corner), and the drawing's size.
    The ids are the nodes' positions in ``nodes``, which lists inputs before their consumers."""
    n = len(nodes)
    sizes = [box_size(node["lines"]) for node in nodes]
    heights = [h for _, h in sizes]
    parents, children = _neighbours(n, edges)
    layer = _layers(n, parents, children)
    columns = _order(layer, parents, children, _components(n, edges))
    y = _centres(columns, parents, children, heights)
    widths = [max((sizes[v][0] for v in column), default=0.0) for column in columns]
    lefts = list(accumulate((w + RANK_GAP for w in widths), initial=float(MARGIN)))   # each column's left side
    top = min((y[v] - heights[v] / 2 for v in range(n)), default=0.0) - MARGIN
    boxes = {}
    for v in range(n):
        w, h = sizes[v]
        boxes[nodes[v]["id"]] = (lefts[layer[v]] + (widths[layer[v]] - w) / 2, y[v] - h / 2 - top, w, h)
    width = max((bx + bw for bx, _, bw, _ in boxes.values()), default=0.0) + MARGIN
    height = max((by + bh for _, by, _, bh in boxes.values()), default=0.0) + MARGIN
    return boxes, width, height


def _edge_paths(edges, boxes):
    """Cubic Bézier control points of each edge, right side of the input to left side of the
    consumer; a consumer's inputs arrive spread over its left side in the order of its inputs."""
    incoming = {}
    for e in edges:
        incoming.setdefault(e["target"], []).append(e)
    paths = []
    for target, group in incoming.items():
        group.sort(key=lambda e: (e["input"] if e["input"] is not None else 0, boxes[e["source"]][1]))
        tx, ty, _, th = boxes[target]
        for k, e in enumerate(group):
            sx, sy, sw, sh = boxes[e["source"]]
            x1, y1 = sx + sw, sy + sh / 2
            y2 = ty + th / 2 + (k - (len(group) - 1) / 2) * min(8.0, th * 0.6 / max(len(group), 1))
            bend = max((tx - x1) / 2, 20.0)
            paths.append(((x1, y1), (x1 + bend, y1), (tx - bend, y2), (tx, y2)))
    return paths


def _text_rows(node, box):
    """(x, y, text, anchor, bold) of each line of a node's box."""
    x, y, w, _ = box
    rows, left = [], False
    for i, line in enumerate(node["lines"]):
        left = left or (line == "" and i > 0)
        baseline = y + PAD_Y + LINE_H * (i + 0.5)
        rows.append((x + PAD_X if left else x + w / 2, baseline, line, "start" if left else "middle", i == 0))
    return rows


def _drawing(nodes, edges, caption):
    """The boxes of ``layout``, the legend entries (x, y, kind) and caption rows (x, y, text) below
    the graph, and the size of the whole drawing."""
    boxes, width, height = layout(nodes, edges)
    caption = list(caption)
    kinds = [k for k in LEGEND if any(node["kind"] == k for node in nodes)]
    legend, x, y = [], float(MARGIN), height + 4
    for kind in kinds:
        legend.append((x, y, kind))
        x += 16 + len(LEGEND[kind]) * CHAR_W + 18
    first = y + 9 + (LINE_H + 6 if kinds else 0)  # the centre of the first caption line
    rows = [(float(MARGIN), first + i * LINE_H, line) for i, line in enumerate(caption)]
    new_height = first + len(caption) * LINE_H + MARGIN if kinds or caption else height
    new_width = max(width, x + MARGIN, max((len(line) for line in caption), default=0) * CHAR_W + 2 * MARGIN)
    return boxes, legend, rows, new_width, new_height


# --- SVG -----------------------------------------------------------------------------------------
def svg_text(nodes, edges, caption=()):
    """The graph as an SVG document (UTF-8 text), laid out by ``layout``."""
    boxes, legend, rows, width, height = _drawing(nodes, edges, caption)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.1f} {height:.1f}" font-family={quoteattr(FONT)} font-size="{FONT_PX}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOUR}"/></marker></defs>',
           f'<rect width="{width:.1f}" height="{height:.1f}" fill="white"/>']
    for (x1, y1), (c1x, c1y), (c2x, c2y), (x2, y2) in _edge_paths(edges, boxes):
        out.append(f'<path d="M{x1:.1f},{y1:.1f} C{c1x:.1f},{c1y:.1f} {c2x:.1f},{c2y:.1f} {x2:.1f},{y2:.1f}" '
                   f'fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.2" marker-end="url(#arrow)"/>')
    out.extend(_svg_node(node, boxes[node["id"]]) for node in nodes)
    for x, y, kind in legend:
        fill, stroke = COLOURS[kind]
        out.append(f'<rect x="{x:.1f}" y="{y + 3:.1f}" width="12" height="12" rx="3" fill="{fill}" stroke="{stroke}"/>'
                   f'<text x="{x + 16:.1f}" y="{y + 9:.1f}" dominant-baseline="central">{escape(LEGEND[kind])}</text>')
    for x, y, line in rows:
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" dominant-baseline="central" xml:space="preserve">'
                   f'{escape(line)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_node(node, box):
    x, y, w, h = box
    fill, stroke = COLOURS[node["kind"]]
    tooltip = node.get("equations") or node["label"]
    parts = [f'<g class="node {node["kind"]}"><title>{escape(tooltip)}</title>',
             f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" fill="{fill}" '
             f'stroke="{stroke}" stroke-width="{2.6 if node.get("root") else 1.2}"/>']
    for tx, ty, line, anchor, bold in _text_rows(node, box):
        weight = ' font-weight="bold"' if bold else ""
        parts.append(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" dominant-baseline="central"'
                     f'{weight} xml:space="preserve">{escape(line)}</text>')
    parts.append("</g>")
    return "".join(parts)


# --- PNG (matplotlib) ----------------------------------------------------------------------------
def draw_png(path, nodes, edges, caption=(), max_pixels=16000):
    """Draw the same layout with matplotlib (no pyplot) and write it as a PNG to ``path``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    boxes, legend, rows, width, height = _drawing(nodes, edges, caption)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    points = FONT_PX * 72 / 100  # pixels at 100 dpi -> points
    text = dict(family="monospace", fontsize=points, va="center")
    for p in _edge_paths(edges, boxes):
        path_ = Path(p, [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4])
        ax.add_patch(FancyArrowPatch(path=path_, arrowstyle="-|>", mutation_scale=9, color=EDGE_COLOUR, lw=1.0))
    for node in nodes:
        x, y, w, h = boxes[node["id"]]
        fill, stroke = COLOURS[node["kind"]]
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=6", fc=fill, ec=stroke,
                                    lw=2.0 if node.get("root") else 0.9))
        for tx, ty, line, anchor, bold in _text_rows(node, (x, y, w, h)):
            ax.text(tx, ty, line, ha="left" if anchor == "start" else "center",
                    fontweight="bold" if bold else "normal", **text)
    for x, y, kind in legend:
        fill, stroke = COLOURS[kind]
        ax.add_patch(FancyBboxPatch((x, y + 3), 12, 12, boxstyle="round,pad=0,rounding_size=3", fc=fill, ec=stroke))
        ax.text(x + 16, y + 9, LEGEND[kind], ha="left", **text)
    for x, y, line in rows:
        ax.text(x, y, line, ha="left", **text)
    dpi = 100 * min(2.0, max_pixels / max(width, height, 1))
    fig.savefig(path, format="png", dpi=dpi, facecolor="white")


# --- DOT -----------------------------------------------------------------------------------------
def _dot_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_label(lines, left=False):
    """Centred lines end in \\n; lines after an empty line (equations), or all with ``left``, in
    \\l: left-justified."""
    parts = []
    for i, line in enumerate(lines):
        left = left or (line == "" and i > 0)
        parts.append(line.replace("\\", "\\\\").replace('"', '\\"') + ("\\l" if left else "\\n"))
    return '"' + "".join(parts) + '"'


def dot_text(nodes, edges, caption=()):
    """Graphviz DOT text of the graph: the same labels and colours as the built-in drawing."""
    out = ["digraph minidl {",
           '  graph [rankdir=LR, fontname="monospace", fontsize=11, labeljust=l, labelloc=b'
           + (f", label={_dot_label(list(caption), left=True)}" if caption else "") + "];",
           '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=11];',
           f'  edge [color="{EDGE_COLOUR}", arrowsize=0.7];']
    for node in nodes:
        fill, stroke = COLOURS[node["kind"]]
        tooltip = node.get("equations") or node["label"]
        out.append(f'  n{node["id"]} [label={_dot_label(node["lines"])}, fillcolor="{fill}", color="{stroke}", '
                   f'penwidth={2.5 if node.get("root") else 1.0}, tooltip={_dot_string(tooltip)}];')
    out.extend(f'  n{e["source"]} -> n{e["target"]};' for e in edges)
    out.append("}")
    return "\n".join(out) + "\n"

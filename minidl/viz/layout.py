"""Drawing a graph without Graphviz: a layered layout, written as SVG text or drawn by matplotlib.

The layout is the classic one for data-flow graphs (Sugiyama's, much simplified), left to right
like micrograd's pictures:

1. **Layers.** An op goes one column after the last of its inputs (the longest path from the
   leaves); a leaf goes in the column just before its first consumer, so a parameter read late
   (the classifier's weight) sits next to the op that reads it, not in column 0. An edge that
   skips columns gets a dummy node (a point) in each, which is ordered and placed like a box, so
   the edge runs through room kept free for it, never under a box (x in ``tanh(x) * x``, drawn
   straight from x to mul, ran under the tanh box: the picture read ``tanh(x) * tanh(x)``).
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
def _neighbours(n, links):
    parents, children = [[] for _ in range(n)], [[] for _ in range(n)]
    for source, target in links:
        parents[target].append(source)
        children[source].append(target)
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


def _chains(layer, edges):
    """Each edge as the chain of nodes it passes: its input, one new dummy node in every column it
    skips (numbered from ``len(layer)`` on; their columns are appended to ``layer``), its consumer."""
    chains = []
    for e in edges:
        chain = [e["source"]]
        for column in range(layer[e["source"]] + 1, layer[e["target"]]):
            chain.append(len(layer))
            layer.append(column)
        chains.append(chain + [e["target"]])
    return chains


def _components(n, links):
    """Component id of each node (union-find), numbered in order of first appearance."""
    root = list(range(n))

    def find(v):
        while root[v] != v:
            root[v] = root[root[v]]
            v = root[v]
        return v

    for source, target in links:
        a, b = find(source), find(target)
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
    boxes, _, width, height = _layout(nodes, edges)
    return boxes, width, height


def _layout(nodes, edges):
    """``layout``'s boxes, and the route of each edge: the points (x, y) where it enters and leaves
    each column it passes, from the right side of its input to the left side of its consumer (at
    its consumer's centre). Between the two points of a column it runs level beside the boxes."""
    n = len(nodes)
    parents, children = _neighbours(n, [(e["source"], e["target"]) for e in edges])
    layer = _layers(n, parents, children)
    chains = _chains(layer, edges)
    links = [link for chain in chains for link in zip(chain, chain[1:])]
    parents, children = _neighbours(len(layer), links)
    sizes = [box_size(node["lines"]) for node in nodes] + [(0.0, 0.0)] * (len(layer) - n)
    heights = [h for _, h in sizes]
    columns = _order(layer, parents, children, _components(len(layer), links))
    y = _centres(columns, parents, children, heights)
    widths = [max((sizes[v][0] for v in column), default=0.0) for column in columns]
    lefts = list(accumulate((w + RANK_GAP for w in widths), initial=float(MARGIN)))   # each column's left side
    top = min((y[v] - heights[v] / 2 for v in y), default=0.0) - MARGIN       # edges' dummies included
    boxes = {}
    for v in range(n):
        w, h = sizes[v]
        boxes[nodes[v]["id"]] = (lefts[layer[v]] + (widths[layer[v]] - w) / 2, y[v] - h / 2 - top, w, h)
    routes = []
    for chain in chains:
        sides = [[lefts[layer[v]], lefts[layer[v]] + widths[layer[v]]] for v in chain]
        sides[0][0] = boxes[chain[0]][0] + sizes[chain[0]][0]      # from its input's right side
        sides[-1][1] = boxes[chain[-1]][0]                         # to its consumer's left side
        routes.append([(x, y[v] - top) for v, xs in zip(chain, sides) for x in xs])
    width = max((bx + bw for bx, _, bw, _ in boxes.values()), default=0.0) + MARGIN
    height = max((y[v] + heights[v] / 2 - top for v in y), default=0.0) + MARGIN
    return boxes, routes, width, height


def _edge_paths(edges, boxes, routes):
    """The path of each edge as SVG commands [("M", (x, y)), ("L", (x, y)), ("C", (x1, y1), (x2, y2), (x, y))]:
    along its route (see ``_layout``), a level line across each column and a curve (a cubic Bézier,
    level at both ends) across each gap; a consumer's inputs arrive spread over its left side in the
    order of its inputs."""
    incoming = {}
    for i, e in enumerate(edges):
        incoming.setdefault(e["target"], []).append(i)
    routes = [list(route) for route in routes]
    for target, group in incoming.items():
        group.sort(key=lambda i: (edges[i]["input"] if edges[i]["input"] is not None else 0, routes[i][-3][1]))
        _, ty, _, th = boxes[target]
        for k, i in enumerate(group):
            y2 = ty + th / 2 + (k - (len(group) - 1) / 2) * min(8.0, th * 0.6 / len(group))
            routes[i][-2:] = [(x, y2) for x, _ in routes[i][-2:]]
    paths = []
    for route in routes:
        path = [("M", route[0])] + ([("L", route[1])] if route[1][0] > route[0][0] else [])
        for (x0, y0), (x1, y1), (x2, y2) in zip(route[1::2], route[2::2], route[3::2]):
            if y1 != y0:
                path.append(("C", ((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1), (x1, y1)))
            elif path[-1][0] == "L":   # level with the line before: one line
                path.pop()
            if x2 > x1 or y1 == y0:
                path.append(("L", (x2, y2)))
        paths.append(path)
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
    """The boxes of ``layout``, the edges' paths, the legend entries (x, y, kind) and caption rows (x, y, text) below
    the graph, and the size of the whole drawing."""
    boxes, routes, width, height = _layout(nodes, edges)
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
    return boxes, _edge_paths(edges, boxes, routes), legend, rows, new_width, new_height


# --- SVG -----------------------------------------------------------------------------------------
def svg_text(nodes, edges, caption=()):
    """The graph as an SVG document (UTF-8 text), laid out by ``layout``."""
    boxes, paths, legend, rows, width, height = _drawing(nodes, edges, caption)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.1f} {height:.1f}" font-family={quoteattr(FONT)} font-size="{FONT_PX}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOUR}"/></marker></defs>',
           f'<rect width="{width:.1f}" height="{height:.1f}" fill="white"/>']
    for edge in paths:
        d = " ".join(code + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) for code, *points in edge)
        out.append(f'<path d="{d}" fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.2" marker-end="url(#arrow)"/>')
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

    boxes, paths, legend, rows, width, height = _drawing(nodes, edges, caption)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    points = FONT_PX * 72 / 100  # pixels at 100 dpi -> points
    text = dict(family="monospace", fontsize=points, va="center")
    codes = {"M": Path.MOVETO, "L": Path.LINETO, "C": Path.CURVE4}
    for edge in paths:
        path_ = Path([p for _, *points in edge for p in points], [codes[c] for c, *points in edge for _ in points])
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

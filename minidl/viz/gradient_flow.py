"""How big the gradients are, where: per parameter, and per time step of a recurrent model.

    loss.backward()
    flow = gradient_flow(model, "grads.png")          # flow["norms"][name] = ‖dL/dθ‖₂
    steps = recurrent_gradient_flow(gru_model, ids, mask, lengths, labels, out_path="bptt.png")
    steps["norms"]                                     # (T,): ‖dL/dh_t‖ for t = 0..T-1

``gradient_flow`` reads the ``.grad`` the last backward left (nothing is recomputed): one bar per
parameter, in module order, grouped and coloured by layer, on a log scale -- a layer whose bars
are orders of magnitude shorter than the others' learns that much more slowly.

``recurrent_gradient_flow`` draws the picture ``theory/vanishing_gradients.md`` argues about for
a recurrence: how much of the loss's gradient reaches the hidden state h_t of each step t. The
fused sequence op (``ops.gru``, ``ops.elman_rnn``) is one graph node, so its states h_t are not
tensors of their own, and the gradient of its output at step t is only the *direct* part (the
loss reads one state per review). The total dL/dh_t -- through every later step -- is what
back-propagation through time carries. So the recurrence is run again one step at a time, the
same op on sequences of length 1, h_t = op(x_proj[:, t:t+1], h_{t-1})[:, 0], each h_t a tensor
that keeps its gradient (``retain_grad``); the classifier and the mean cross-entropy are the
model's own (``_RecurrentClassifier.forward``'s code). The model's parameters' ``.grad`` are
left as they were.
"""
from __future__ import annotations

import numpy as np

from .. import creation
from ..autograd import ops
from ..autograd.tensor import Tensor
from ..io import write_figure
from ..nn import GRU, ElmanRNN


# --- per parameter ---------------------------------------------------------------------------------
def gradient_flow(model, out_path=None, title=None, draw=True):
    """‖.grad‖₂ of every parameter of ``model`` after a backward, and a bar chart of them.

    Returns {"names": [...], "layers": [...] (each parameter's module, "" for the model's own),
    "shapes": [...], "norms": {name: float, or None where .grad is None}, "figure": the
    matplotlib Figure (when ``draw``)}; writes ``out_path`` (.png, .svg, .pdf) when given."""
    names, layers, shapes, norms = [], [], [], {}
    for name, p in model.named_parameters():
        names.append(name)
        layers.append(name.rpartition(".")[0])
        shapes.append(tuple(p.shape))
        norms[name] = None if p.grad is None else float(np.linalg.norm(p.xp.to_numpy(p.grad).astype(np.float64)))
    result = {"names": names, "layers": layers, "shapes": shapes, "norms": norms}
    title = title or f"{type(model).__name__}: ‖dL/dθ‖ per parameter"
    return _drawn(result, draw, out_path, lambda: _bars(names, layers, [norms[n] for n in names], title))


def _bars(names, layers, norms, title):
    """Horizontal bars, module order from the top, one colour per layer, log-scale norms."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, any backend

    positive = [v for v in norms if v]
    floor = min(positive) / 10 if positive else 1e-12
    fig = Figure(figsize=(8, 1.4 + 0.26 * len(names)), layout="constrained")
    ax = fig.subplots()
    layer_index = {layer: i for i, layer in enumerate(dict.fromkeys(layers))}   # in order of first appearance
    colours = [f"C{layer_index[layer] % 10}" for layer in layers]
    y = np.arange(len(names))
    widths = [(v if v else floor) - floor for v in norms]
    ax.barh(y, widths, left=floor, color=colours, height=0.7)
    for i, v in enumerate(norms):
        if not v:
            ax.text(floor * 1.15, i, "no grad" if v is None else "0", va="center", fontsize=8, color="0.35")
    ax.set_xscale("log")
    ax.set_xlim(floor, max(positive, default=1.0) * 3)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()  # the first module at the top
    ax.set_xlabel("‖dL/dθ‖₂ (log scale)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _drawn(result, draw, out_path, figure):
    """``result`` with its "figure" (made by ``figure()``) when ``draw`` or ``out_path``, and the
    figure written to ``out_path`` (.png, .svg, .pdf), atomically."""
    if draw or out_path is not None:
        result["figure"] = figure()
    if out_path is not None:
        write_figure(result["figure"], out_path)
    return result


# --- per time step -----------------------------------------------------------------------------------
def _step(rnn, x_proj_t, h):
    """One step of the model's recurrence: the fused op on a sequence of length 1, (B, H) out."""
    if isinstance(rnn, GRU):
        return ops.gru(x_proj_t, h, rnn.U_zr, rnn.U_h)[:, 0]
    if isinstance(rnn, ElmanRNN):
        return ops.elman_rnn(x_proj_t, h, rnn.U, rnn.nonlinearity)[:, 0]
    raise TypeError(f"recurrent_gradient_flow: expected a GRU or ElmanRNN layer, got {type(rnn).__name__}")


def step_states(model, ids):
    """The model's hidden states h_0..h_{T-1}, each (B, H), as separate tensors of one graph."""
    rnn = model.rnn
    x = model.embed(ids)                                   # (B, T, E)
    x_proj = rnn._project(x)                               # (B, T, gates·H): every step's input at once
    h = rnn._initial_state(x, None)                        # (B, H) zeros
    states = []
    for t in range(x_proj.shape[1]):
        h = _step(rnn, x_proj[:, t:t + 1], h).retain_grad()
        states.append(h)
    return states


def recurrent_gradient_flow(model, ids, mask, lengths, labels, out_path=None, title=None, draw=True):
    """‖dL/dh_t‖ for every step t of a GRU or Elman RNN classifier (``minidl.models``), L the
    mean cross-entropy of the batch; see the module docstring for how h_t gets its gradient.

    ids (B, T), lengths (B,) and labels (B,) as the model and ``cross_entropy`` take them
    (``mask`` is accepted for the models' signature; the recurrent models read ``lengths``).
    Returns {"t": (T,), "norms": (T,) ‖dL/dh_t‖ over the batch, "per_review": (B, T),
    "grads": (B, T, H) dL/dh_t itself,
    "lengths": (B,), "loss": float, "logits": (B, C), "figure" (when ``draw``)}. Steps after
    a review's last word do not reach the loss: their gradient is 0 (left out of the plot)."""
    if not (hasattr(model, "rnn") and hasattr(model, "out")):
        raise TypeError("recurrent_gradient_flow: expected a recurrent classifier (minidl.models: rnn or gru) "
                        f"with .rnn and .out, got {type(model).__name__}")
    if not isinstance(lengths, Tensor):
        lengths = creation.tensor(np.asarray(lengths), device=ids.device)
    kept = [(p, p.grad) for p in model.parameters()]
    try:
        states = step_states(model, ids)
        hs = ops.stack(states, axis=1)                                     # (B, T, H)
        last = hs[creation.arange(ids.shape[0], device=ids.device), lengths - 1]   # (B, H)
        logits = model.out(model.dropout(last))                            # (B, C)
        loss = ops.cross_entropy(logits, labels)
        loss.backward()
        grads = np.stack([s.xp.to_numpy(s.grad).astype(np.float64) for s in states], axis=1)   # (B, T, H)
    finally:
        for p, grad in kept:
            p.grad = grad
    result = {"t": np.arange(grads.shape[1]), "norms": np.linalg.norm(grads, axis=(0, 2)),
              "per_review": np.linalg.norm(grads, axis=-1), "grads": grads,         # per_review: (B, T)
              "lengths": lengths.numpy().astype(np.int64), "loss": float(loss.item()), "logits": logits.numpy()}
    title = title or f"{type(model).__name__}: gradient reaching each hidden state"
    return _drawn(result, draw, out_path, lambda: _lines(result, title))


def _lines(result, title):
    """‖dL/dh_t‖ against t on a log scale: the batch's total, and each review's thinly."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for row, length in zip(result["per_review"], result["lengths"]):
        shown = np.where(row > 0, row, np.nan)[:length]
        ax.plot(np.arange(length), shown, color="0.6", lw=0.7, alpha=0.6, marker=".", markersize=2)
    ax.plot(result["t"], np.where(result["norms"] > 0, result["norms"], np.nan), color="C0", lw=2,
            marker="o", markersize=3, label="whole batch")
    ax.plot([], [], color="0.6", lw=0.7, label="one review (up to its last word)")
    ax.set_yscale("log")
    ax.set_xlabel("t (word position)")
    ax.set_ylabel("‖dL/dh_t‖ (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig

"""The Graph view's answers: the autograd graph of a typed expression or of a classifier on a text,
drawn by ``minidl.viz.graph``, before and after the backward pass.

    expression_graph("x = [1, -2, 3]; sum(tanh(x) * x)", backward=True)
    model_graph(model, vocab, tokenizer, labels, "a great film", label="pos", backward=True)

Forward: the graph of the output (an expression's last line; a model's loss), every small value
printed. Backward: the gradient of L -- the output itself when it is one number, else
L = sum(output), drawn as one more node; for a model the cross-entropy of the given label, or of
the predicted one -- at every node: ``graph(L, gradients="all")`` runs each op's hand-written
backward from L (seeded with dL/dL = 1) down the graph, exactly the engine's backward walk, without
writing any ``.grad`` (so a served model is never changed). A tensor with more than 8 numbers
shows the norm of its gradient.

The answer (JSON): {"svg", "nodes": [{"id", "label", "kind", "op", "name", "shape", "value", "grad",
"grad_norm"}], "edges": [{"source", "target", "input"}], "mode", "summary", "backward", "note", ...};
a value that is not finite is the string "nan", "inf" or "-inf" (JSON has no such numbers).

Building a graph needs grad mode on, which is one global flag in minidl: the caller holds the lock
that every forward pass of the server takes.
"""
from __future__ import annotations

import math

import numpy as np

import minidl as md

from ..errors import MinidlError
from ..viz import graph
from . import expression

MAX_NODES = 300                  # graph() draws a summary, not the nodes, beyond this
NODE_FIELDS = ("id", "label", "kind", "op", "name", "shape", "value", "grad", "grad_norm")


class ViewError(MinidlError, ValueError):
    """A request a view cannot answer (a label the model lacks, a text too long for it): a 400 with this message."""


def expression_graph(text, backward=False):
    """The graph of ``text`` (see ``minidl.web.expression``) as the API's JSON answer."""
    with md.enable_grad(), np.errstate(all="ignore"):           # log(0) = -inf is shown, not warned about
        program = expression.run(text)
        output, names = program.output, dict(program.names)
        root, note = output, "forward: the value of every node"
        if backward:
            if output.size() != 1:
                root = output.sum()
                names["L"] = root
            note = ("backward: each node's gradient d L / d node, L = "
                    + ("the output" if root is output else "sum(output)"))
            if not root.requires_grad:
                note += "; nothing here requires grad: make a variable (x = [1, 2]) to get gradients"
        answer = _answer(root, backward, note, names=names)
    answer["output"] = {"shape": list(output.shape), "value": _plain(output.numpy().tolist())}
    return answer


def model_graph(model, vocab, tokenizer, labels, text, label=None, backward=False, device="cpu"):
    """The graph of a classifier's loss on ``text`` for ``label`` (default: its own prediction)."""
    if label is not None and label not in labels:
        raise ViewError(f"label={label!r}: this model's labels are {', '.join(labels)}")
    ids = vocab.encode_text(text, tokenizer)                            # (T,); raises on unknown-only text
    check_length(model, len(ids))
    batch = {"ids": md.tensor(ids[None, :], device=device), "mask": md.ones(1, len(ids), device=device),
             "lengths": md.tensor([len(ids)], device=device)}
    with md.enable_grad(), np.errstate(all="ignore"):
        logits = model(batch["ids"], batch["mask"], batch["lengths"]).logits    # (1, C)
        probabilities = logits.softmax(axis=-1).numpy()[0]
        predicted = labels[int(np.argmax(probabilities))]
        target = label or predicted
        loss = md.cross_entropy(logits, md.tensor([labels.index(target)], device=device))
        note = (f"backward: each node's gradient d loss / d node, loss = cross-entropy of {target!r}" if backward
                else f"forward: the loss is the cross-entropy of {target!r}")
        answer = _answer(loss, backward, note, model=model, names={**batch, "logits": logits, "loss": loss})
    answer.update(words=tokenizer(text)[:len(ids)], prediction=predicted, label=target, loss=_plain(loss.item()),
                  probabilities=dict(zip(labels, map(float, probabilities))))
    return answer


def check_length(model, tokens):
    """A transformer reads at most its ``max_len`` positions: a clear error instead of its ValueError."""
    position = getattr(model, "position", None)
    if position is not None and tokens > position.max_len:
        raise ViewError(f"the text has {tokens} tokens; this model reads at most {position.max_len}: shorten it")


def _answer(root, backward, note, **labels):
    """The API's JSON answer for ``graph(root, **labels)`` (``model=``, ``names=``), drawn as the views draw it:
    every small value, and with ``backward`` every node's gradient (replayed)."""
    drawn = graph(root, values=True, gradients="all" if backward else False, max_nodes=MAX_NODES, **labels)
    nodes = [{name: _plain(node[name]) for name in NODE_FIELDS} for node in drawn.nodes]
    return {"svg": drawn.to_svg(engine="builtin"), "nodes": nodes, "edges": drawn.edges, "mode": drawn.mode,
            "summary": _plain({k: v for k, v in drawn.summary.items() if k != "parameters"}),
            "backward": bool(backward), "note": note}


def _plain(value):
    """``value`` with tuples as lists and non-finite floats as the strings "nan", "inf", "-inf"."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value

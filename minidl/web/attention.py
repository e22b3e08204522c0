"""The Attention view's answer: where each word of a text looks, for the classifiers that attend.

* ``transformer`` (TransformerClassifier): per layer and head, the softmax over the keys that
  ``forward_with_states`` returns -- row i is query word i, column j key word j, each row sums
  to 1 (a causal model leaves the future columns 0).
* ``attention`` (WindowAttention): each word's weights over its window of ±r neighbours, the
  model's ``Output.attention`` (T, 2r+1): column k is the word at offset k − r; offsets past
  either end of the text are null.

    attention_maps(model, vocab, tokenizer, labels, "not a good film")
    -> {"kind": "transformer", "words", "known", "prediction", "probabilities",
        "layers": [[(T, T) per head] per layer]}
    or {"kind": "window", "radius": r, "words", ..., "weights": (T, 2r+1) with null outside the text}
    or None for a model without attention weights.
"""
from __future__ import annotations

import numpy as np

import minidl as md

from .graphs import ViewError, check_length

MAX_WORDS = 64      # a (T, T) map per head: the view reads short texts
KINDS = {"transformer": "transformer", "attention": "window"}


def kind_of(model):
    """"transformer", "window" or None: what attention ``model`` has to show."""
    return KINDS.get(getattr(model, "name", None))


def attention_maps(model, vocab, tokenizer, labels, text, device="cpu"):
    """The attention of ``model`` reading ``text`` (see the module docstring); None if it has none."""
    kind = kind_of(model)
    if kind is None:
        return None
    ids = vocab.encode_text(text, tokenizer)                           # (T,)
    if len(ids) > MAX_WORDS:
        # not len(ids): the tokenizer has cut the text to the model's max_length already
        raise ViewError(f"the text has more than {MAX_WORDS} tokens; the Attention view shows at most {MAX_WORDS}: "
                        f"shorten it")
    check_length(model, len(ids))
    batch = (md.tensor(ids[None, :], device=device), md.ones(1, len(ids), device=device),
             md.tensor([len(ids)], device=device))
    with md.no_grad():
        if kind == "transformer":
            out, _, attentions = model.forward_with_states(*batch)
            maps = {"layers": [a.numpy()[0].round(4).tolist() for a in attentions]}    # L × (h, T, T)
        else:
            out = model(*batch)
            maps = _window(out.attention.numpy()[0])
        probabilities = out.logits.softmax(axis=-1).numpy()[0]
    return {"kind": kind, "words": tokenizer(text)[:len(ids)], "known": [int(i) != vocab.unk_id for i in ids],
            "prediction": labels[int(np.argmax(probabilities))],
            "probabilities": dict(zip(labels, map(float, probabilities))), **maps}


def _window(weights):
    """(T, 2r+1) window weights -> {"radius", "weights"} with null where the offset leaves the text."""
    T, width = weights.shape
    radius = width // 2
    rows = [[round(float(w), 4) if 0 <= t + k - radius < T else None for k, w in enumerate(row)]
            for t, row in enumerate(weights)]
    return {"radius": radius, "weights": rows}

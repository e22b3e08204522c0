"""Per-word explanations of a trained model's prediction, as the course prints them.

* TokenMLP / WindowAttention: each word's sub-score (for two classes: the score's
  pos − neg difference, so a positive number pushes towards "pos"); they add up to the logit.
* SoftmaxWeighted: the sub-score and the softmax weight of each word; the prediction is
  their weighted sum.
* WindowAttention: also, for each word, the neighbour it attends to most.
* Elman RNN / GRU: there are no per-word scores; we print the prediction after each
  prefix of the review ("if the review stopped here"), which shows where it changes its mind.
"""
from __future__ import annotations

import numpy as np

import minidl as md


def explain(text, model, vocab, tokenizer, label_names, device="cpu"):
    """A dict: words, whether each is known, prediction, probabilities, and per-word columns."""
    ids = vocab.encode_text(text, tokenizer)                   # (T,), raises on empty / unknown-only text
    words = tokenizer(text)[:len(ids)]
    batch_ids = md.tensor(ids[None, :], device=device)           # (1, T)
    mask = md.ones(1, len(ids), device=device)
    lengths = md.tensor([len(ids)], device=device)
    with md.no_grad():
        out = model(batch_ids, mask, lengths)
        probabilities = out.logits.softmax(axis=-1).numpy()[0]
        columns = {}
        if out.token_scores is not None:
            scores = out.token_scores.numpy()[0]                  # (T, C)
            columns["score"] = scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores.max(axis=1)
        if out.token_weights is not None:
            columns["weight"] = out.token_weights.numpy()[0]
        if out.attention is not None:
            attention = out.attention.numpy()[0]                   # (T, 2r+1)
            radius = attention.shape[1] // 2
            columns["attends to"] = [words[t + int(np.argmax(row)) - radius] for t, row in enumerate(attention)]
        if model.prefix_states:
            prefix = model.prefix_logits(batch_ids).softmax(axis=-1).numpy()[0]   # (T, C)
            columns[f"p({label_names[-1]}) so far"] = prefix[:, -1]
    return {"text": text, "words": words, "known": [int(i) != vocab.unk_id for i in ids],
            "prediction": label_names[int(np.argmax(probabilities))],
            "probabilities": dict(zip(label_names, map(float, probabilities))), "columns": columns}


def format_explanation(result):
    names = list(result["columns"])
    lines = [f"{result['text']!r}",
             "  prediction: " + result["prediction"] + "  ("
             + ", ".join(f"p({k}) = {v:.3f}" for k, v in result["probabilities"].items()) + ")",
             "  " + f"{'word':<16}" + "".join(f"{n:>18}" for n in names)]
    for t, word in enumerate(result["words"]):
        shown = word if result["known"][t] else f"{word} (unknown)"
        cells = []
        for name in names:
            value = result["columns"][name][t]
            cells.append(f"{value:>18}" if isinstance(value, str) else f"{value:>18.3f}")
        lines.append(f"  {shown:<16}" + "".join(cells))
    return "\n".join(lines)

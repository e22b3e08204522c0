"""Per-word explanations of a trained model's prediction, as the course prints them.

* TokenMLP / WindowAttention: each word's sub-score (for two classes: the score's
  pos − neg difference, so a positive number pushes towards "pos"; for more, its sub-score of
  the predicted class C minus its mean over the classes, column "score(C)": only differences
  between classes change the softmax, so a raw sub-score alone says nothing); they add up to
  the logit (to the logit minus the mean logit).
* SoftmaxWeighted: the sub-score and the softmax weight of each word; the prediction is
  their weighted sum.
* WindowAttention: also, for each word, the neighbour it attends to most.
* Elman RNN / GRU: there are no per-word scores; we print the prediction after each
  prefix of the review ("if the review stopped here"), which shows where it changes its mind
  (of the last class for two, of the predicted class for more); "start" is the prediction
  before the first word, from which the first word's change counts (not 0.5, nor 1/C).
* Transformer: no per-word column (its words act on one another through attention); the result's
  ``legend`` says so, and where to look instead.

``legend``: one line saying how to read the columns.

The table shows every word of the text as written, in order, not only those the model saw:
a word the cleaning dropped (a stop word, a one-letter word, "10/10" under letters-only
cleaning, an HTML tag, a link) is marked "dropped by cleaning: <why>" with its number columns
empty, so that nothing the user typed silently disappears. A word the vocabulary lacks is read
by the model as ``<unk>``; it keeps its numbers (the ``<unk>`` embedding does push the
prediction, and the sub-scores still add up to the logit) and is marked "not in vocabulary".
"""
from __future__ import annotations

import numpy as np

import minidl as md


def explain(text, model, vocab, tokenizer, label_names, device="cpu"):
    """A dict: words, whether each is known, prediction, probabilities, per-word columns, and how many
    words past the tokenizer's max_length the model did not read ("unread")."""
    ids = vocab.encode_text(text, tokenizer)                   # (T,), raises on empty / unknown-only text
    words = tokenizer(text)[:len(ids)]
    batch_ids = md.tensor(ids[None, :], device=device)           # (1, T)
    mask = md.ones(1, len(ids), device=device)
    lengths = md.tensor([len(ids)], device=device)
    with md.no_grad():
        out = model(batch_ids, mask, lengths)
        probabilities = out.logits.softmax(axis=-1).numpy()[0]
        # two classes: pos - neg and p(pos), as the course prints them; more: the predicted class c's
        # (a word's largest sub-score over the classes, printed before, named no class)
        c = len(label_names) - 1 if len(label_names) == 2 else int(np.argmax(probabilities))
        columns, start = {}, None
        if out.token_scores is not None:
            scores = out.token_scores.numpy()[0]                  # (T, C)
            if len(label_names) == 2:
                columns["score"] = scores[:, 1] - scores[:, 0]
            else:   # raw: "boring" read as the second strongest push towards good, pushing away from it
                columns[f"score({label_names[c]})"] = scores[:, c] - scores.mean(axis=1)
        if out.token_weights is not None:
            columns["weight"] = out.token_weights.numpy()[0]
        if out.attention is not None:
            attention = out.attention.numpy()[0]                   # (T, 2r+1)
            radius = attention.shape[1] // 2
            columns["attends to"] = [words[t + int(np.argmax(row)) - radius] for t, row in enumerate(attention)]
        if model.prefix_states:
            prefix = model.prefix_logits(batch_ids).softmax(axis=-1).numpy()[0]   # (T, C)
            columns[f"p({label_names[c]}) so far"] = prefix[:, c]
            start = dict(zip(label_names, map(float, model.start_logits(batch_ids).softmax(axis=-1).numpy()[0])))
    known = [int(i) != vocab.unk_id for i in ids]
    rows = _rows(text, tokenizer, words, known, vocab.unk_token)
    return {"text": text, "words": words, "known": known,
            "prediction": label_names[int(np.argmax(probabilities))],
            "probabilities": dict(zip(label_names, map(float, probabilities))), "columns": columns, "start": start,
            "rows": rows, "unread": sum(1 for row in rows[_cut(rows):] if row["word"]),
            "legend": _legend(columns, label_names, c)}


def _cut(rows):
    """The first row past the tokenizer's max_length (len(rows) if none): from there on the model reads nothing."""
    return next((i for i, row in enumerate(rows) if "past max_length" in (row["note"] or "")), len(rows))


def _legend(columns, label_names, c):
    """How to read ``columns`` (of class ``c``), in one line."""
    towards = f"> 0 pushes towards {label_names[c]!r}"
    if "score" in columns:
        return f"score = the word's sub-score of {label_names[1]!r} minus that of {label_names[0]!r}; {towards}"
    if f"score({label_names[c]})" in columns:
        return f"score({label_names[c]}) = the word's sub-score of it minus the mean over the classes; {towards}"
    if columns:
        return f"p({label_names[c]}) so far = the prediction had the review stopped at that word"
    return ("no per-word numbers: a transformer's words act on one another through attention; minidl serve "
            "--classifier shows its attention maps")


def _rows(text, tokenizer, words, known, unk):
    """The table's rows: each word of ``text`` as written, one row per token it became (one row when
    it became none). A row: ``word`` ("" on a word's second and later tokens), ``token`` (None when
    the word became none), ``index`` (the token's position in the model's input, which indexes the
    columns; None when dropped) and ``note`` (why dropped, or that the vocabulary lacks it; or None).

    ``tokenizer.trace`` says what became of each word; a tokenizer without it (any callable
    text -> words) gives one row per model token, as before."""
    traced = (tokenizer.trace(text) if hasattr(tokenizer, "trace")
              else [(word, [(word, None)], None) for word in words])
    rows, t = [], 0
    for word, tokens, dropped in traced:
        if not tokens:
            rows.append({"word": word, "token": None, "index": None, "note": f"dropped by cleaning: {dropped}"})
        for k, (token, why) in enumerate(tokens):
            row = {"word": "" if k else word, "token": token, "index": None, "note": f"dropped by cleaning: {why}"}
            if why is None:
                row.update(index=t, note=None if known[t] else f"not in vocabulary: {unk}")
                t += 1
            rows.append(row)
    if t != len(words):
        raise RuntimeError(f"explain: the tokenizer's trace kept {t} tokens, its cleaning {len(words)}")
    return rows


def format_explanation(result, max_word=24):
    """``explain``'s result as text: the prediction, then a table of every word of the text in
    order: as written, the token the model read, the columns, and a note on words it did not read
    (dropped by the cleaning) or read as ``<unk>``; the words past the tokenizer's max_length as one
    line; last, the ``legend``. Words longer than ``max_word``, and the text echoed first past 100
    characters, are cut ("...")."""
    names, rows = list(result["columns"]), result["rows"]
    words = [_fit(" ".join(row["word"].split()), max_word) for row in rows]    # a tag may hold newlines
    tokens = [_fit(row["token"] or "", max_word) for row in rows]
    word_width = max([len("word"), *map(len, words)]) + 2
    token_width = max([len("token"), *map(len, tokens)]) + 2
    widths = [max(len(name), 7) + 2 for name in names]
    lines = [_fit(repr(result["text"]), 100),   # the table shows every word: a long review was one huge line
             "  prediction: " + result["prediction"] + "  ("
             + ", ".join(f"p({k}) = {v:.3f}" for k, v in result["probabilities"].items()) + ")",
             "  " + f"{'word':<{word_width}}{'token':<{token_width}}"
             + "".join(f"{n:>{w}}" for n, w in zip(names, widths)) + "  note"]
    cut = _cut(rows)   # one line says how many words the model did not read
    for word, token, row in zip(words[:cut], tokens, rows):
        cells = [_cell(result["columns"][name], row["index"], width) for name, width in zip(names, widths)]
        line = f"  {word:<{word_width}}{token:<{token_width}}" + "".join(cells) + f"  {row['note'] or ''}"
        lines.append(line.rstrip())
    if cut < len(rows):
        lines.append(f"  ... and {result['unread']} more words past max_length, not read by the model")
    return "\n".join([*lines, f"  ({result['legend']})"])


def _cell(column, index, width):
    """One number (3 decimals) or word of ``column``, right-aligned in ``width``; blank for a dropped word."""
    if index is None:
        return " " * width
    value = column[index]
    return f"{_fit(value, width - 2):>{width}}" if isinstance(value, str) else f"{value:>{width}.3f}"


def _fit(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."

"""minidl explain: every word of the text in the table, dropped and unknown ones marked, numbers unchanged."""
import re

import numpy as np
import pytest

import minidl as md
from minidl.data.text import Tokenizer
from minidl.data.vocab import Vocabulary
from minidl.models import build_model
from minidl.train.explain import explain, format_explanation

TEXT = "I didn't like it, 10/10.<br />Not a bad zzyzx film at www.imdb.com"
VOCAB = Vocabulary(["<pad>", "<unk>", "didn", "like", "it", "did", "not", "n't", "10", "good", "bad"])
MODELS = {"softmax": dict(hidden=[8, 4]), "attention": dict(hidden=8, radius=1, scorer_hidden=[4]),
          "gru": dict(hidden=4), "mlp": dict(hidden=[4])}
OPTIONS = Tokenizer(contractions="not", keep_digits=True, stop_words="english")


def small_model(name):
    md.manual_seed(0)
    model = build_model(name, len(VOCAB), num_classes=2, embed_dim=4, **MODELS[name])
    model.eval()
    return model


def reference_columns(model, tokenizer, text):
    """The columns as explain computed them before it showed dropped words: from the model's own outputs."""
    words = tokenizer(text)
    ids = VOCAB.encode(words)
    with md.no_grad():
        out = model(md.tensor(ids[None, :]), md.ones(1, len(ids)), md.tensor([len(ids)]))
        columns = {}
        if out.token_scores is not None:
            scores = out.token_scores.numpy()[0]
            columns["score"] = scores[:, 1] - scores[:, 0]
        if out.token_weights is not None:
            columns["weight"] = out.token_weights.numpy()[0]
        if out.attention is not None:
            radius = out.attention.shape[-1] // 2
            columns["attends to"] = [words[t + int(np.argmax(row)) - radius]
                                     for t, row in enumerate(out.attention.numpy()[0])]
        if model.prefix_states:
            columns["p(pos) so far"] = model.prefix_logits(md.tensor(ids[None, :])).softmax(axis=-1).numpy()[0][:, -1]
    return words, columns


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("tokenizer", [Tokenizer(), OPTIONS], ids=["course", "options"])
def test_numbers_of_the_words_the_model_read_are_unchanged(name, tokenizer):
    model = small_model(name)
    result = explain(TEXT, model, VOCAB, tokenizer, ["neg", "pos"])
    words, columns = reference_columns(model, tokenizer, TEXT)
    assert result["words"] == words and result["known"] == [w in VOCAB for w in words]
    assert list(result["columns"]) == list(columns)
    for column, expected in columns.items():
        if isinstance(expected[0], str):
            assert result["columns"][column] == expected
        else:
            np.testing.assert_array_equal(result["columns"][column], expected)
    # the rows that the model read point at its positions, in order; the printed numbers are the same numbers
    read = [row for row in result["rows"] if row["index"] is not None]
    assert [row["index"] for row in read] == list(range(len(words))) and [row["token"] for row in read] == words
    lines = format_explanation(result).splitlines()[3:]
    for row, line in zip(result["rows"], lines):
        for column in columns:
            if row["index"] is not None and not isinstance(columns[column][0], str):
                assert f"{columns[column][row['index']]:.3f}" in line


def test_every_word_of_the_text_is_in_the_table_in_order():
    result = explain(TEXT, small_model("softmax"), VOCAB, Tokenizer(), ["neg", "pos"])
    printed = format_explanation(result)
    lines = printed.splitlines()
    assert lines[2].split() == ["word", "token", "score", "weight", "note"]
    table = lines[3:-1]   # the last line is the legend
    written = ["I", "didn't", "like", "it,", "10/10.", "<br />", "Not", "a", "bad", "zzyzx", "film", "at",
               "www.imdb.com"]
    assert [row["word"] for row in result["rows"]] == written
    assert [line[2:].split("  ")[0].strip() for line in table] == written
    notes = {row["word"]: row["note"] for row in result["rows"]}
    assert notes == {"I": "dropped by cleaning: too short", "didn't": None, "like": None, "it,": None,
                     "10/10.": "dropped by cleaning: not letters", "<br />": "dropped by cleaning: HTML tag",
                     "Not": None, "a": "dropped by cleaning: too short", "bad": None,
                     "zzyzx": "not in vocabulary: <unk>", "film": "not in vocabulary: <unk>",
                     "at": "not in vocabulary: <unk>", "www.imdb.com": "dropped by cleaning: link"}
    for line in table:
        dropped = "dropped by cleaning" in line
        assert bool(re.search(r"-?\d+\.\d{3}", line)) != dropped, line    # numbers exactly on the rows read
        if "zzyzx" in line:
            assert line.rstrip().endswith("not in vocabulary: <unk>") and re.search(r"\d\.\d{3}", line)


def test_a_word_that_becomes_several_tokens_or_loses_one_to_the_stop_words():
    result = explain(TEXT, small_model("mlp"), VOCAB, OPTIONS, ["neg", "pos"])
    rows = [(row["word"], row["token"], row["index"] is not None, row["note"]) for row in result["rows"][:7]]
    assert rows == [("I", None, False, "dropped by cleaning: too short"),
                    ("didn't", "did", False, "dropped by cleaning: stop word"), ("", "not", True, None),
                    ("like", "like", True, None), ("it,", "it", False, "dropped by cleaning: stop word"),
                    ("10/10.", "10", True, None), ("", "10", True, None)]
    lines = format_explanation(result).splitlines()
    assert lines[4].split() == ["didn't", "did", "dropped", "by", "cleaning:", "stop", "word"]
    assert lines[5].split()[0] == "not" and re.search(r"-?\d\.\d{3}$", lines[5])


def test_past_max_length_and_long_words():
    """The words past max_length are one line of the table (a 20,000-word text printed 19,900 rows
    of "dropped by cleaning: past max_length")."""
    tokenizer = Tokenizer(max_length=2)
    result = explain("like " + "x" * 40 + " bad" + " film" * 500, small_model("mlp"), VOCAB, tokenizer, ["neg", "pos"])
    assert [row["note"] for row in result["rows"]] == [None, "not in vocabulary: <unk>",
                                                       *["dropped by cleaning: past max_length"] * 501]
    table = format_explanation(result).splitlines()[3:-1]     # the first line is the text, the last the legend
    assert len(table) == 3 and "x" * 21 + "..." in table[1] and "x" * 22 not in table[1]
    assert table[2] == "  ... and 501 more words past max_length, not read by the model"
    head = format_explanation(result).splitlines()[0]         # it echoed all 2,546 characters of the text
    assert head == repr("like " + "x" * 40 + " bad" + " film" * 500)[:97] + "..."


def test_a_tokenizer_without_trace_shows_the_tokens_as_before():
    result = explain("like zzyzx bad", small_model("mlp"), VOCAB, str.split, ["neg", "pos"])
    assert [(row["word"], row["token"], row["index"], row["note"]) for row in result["rows"]] == [
        ("like", "like", 0, None), ("zzyzx", "zzyzx", 1, "not in vocabulary: <unk>"), ("bad", "bad", 2, None)]
    assert "zzyzx" in format_explanation(result)


@pytest.mark.parametrize("name", ["mlp", "gru"])
def test_more_than_two_classes_are_explained_for_the_predicted_class(name):
    """Three classes: the score column was each word's largest sub-score over the classes, naming no class; then
    the predicted class's raw sub-score, which alone says nothing (a word whose sub-scores are 0.68, 0.59, 0.30
    read as a push towards the 0.59 class): now minus its mean over the classes, and a legend says so."""
    md.manual_seed(0)
    model = build_model(name, len(VOCAB), num_classes=3, embed_dim=4, **MODELS[name])
    model.eval()
    result = explain("not a bad film", model, VOCAB, Tokenizer(), ["a", "b", "c"])
    probabilities = list(result["probabilities"].values())
    c = int(np.argmax(probabilities))
    assert result["prediction"] == "abc"[c]
    ids = VOCAB.encode(result["words"])
    with md.no_grad():
        out = model(md.tensor(ids[None, :]), md.ones(1, len(ids)), md.tensor([len(ids)]))
        if name == "mlp":
            scores = out.token_scores.numpy()[0]
            expected = {f"score({'abc'[c]})": scores[:, c] - scores.mean(axis=1)}
            assert "minus the mean over the classes" in format_explanation(result).splitlines()[-1]
        else:
            expected = {f"p({'abc'[c]}) so far": model.prefix_logits(md.tensor(ids[None, :])).softmax(axis=-1)
                        .numpy()[0][:, c]}
    assert list(result["columns"]) == list(expected)
    for column, values in expected.items():
        np.testing.assert_array_equal(result["columns"][column], values)



def test_the_legend_says_how_to_read_the_numbers_and_why_a_transformer_has_none():
    """The header said "score" with no direction, and a transformer's table had no number column, unexplained."""
    result = explain("not a bad film", small_model("mlp"), VOCAB, Tokenizer(), ["neg", "pos"])
    assert result["legend"] == "score = the word's sub-score of 'pos' minus that of 'neg'; > 0 pushes towards 'pos'"
    md.manual_seed(0)
    transformer = build_model("transformer", len(VOCAB), num_classes=2, hidden=4, num_heads=1, num_layers=1, d_ff=4)
    transformer.eval()
    result = explain("not a bad film", transformer, VOCAB, Tokenizer(), ["neg", "pos"])
    assert result["columns"] == {} and "no per-word numbers" in format_explanation(result).splitlines()[-1]

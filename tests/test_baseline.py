"""The n-gram baselines: the sparse op's gradient (finite differences and PyTorch), the features
against plain-Python counts, a run on the synthetic corpus, and bad settings in one line."""
import argparse
import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy import sparse

import minidl as md
from minidl import MinidlError
from minidl.baseline import (BaselineError, NgramVocabulary, SparseLinear, check_settings, features, main, nb_ratios,
                             run_baseline, sparse_linear, tfidf)
from minidl.cli import build_parser, main as cli_main   # (main is minidl.baseline's)
from minidl.gradcheck import gradcheck


def _sparse(rows=6, columns=9, density=0.35, seed=0):
    """A small random CSR matrix (float64) with an empty row and an empty column."""
    x = sparse.random(rows, columns, density=density, format="csr", random_state=seed, dtype=np.float64)
    x = x.tolil()
    x[0, :] = 0
    x[:, 3] = 0
    return x.tocsr()


# ------------------------------------------------------------------------------------------- the op

def test_sparse_linear_gradient_matches_finite_differences():
    """Float64 gradcheck of dL/dW = xᵀ g and dL/db = Σ g against dense centred differences."""
    x = _sparse()
    rng = np.random.default_rng(1)
    weight = md.tensor(rng.normal(size=(9, 3)), dtype="float64", requires_grad=True)
    bias = md.tensor(rng.normal(size=3), dtype="float64", requires_grad=True)
    result = gradcheck(lambda w, b: sparse_linear(x, w, b), [weight, bias])
    assert result.ok, result
    assert result.max_rel_error < 1e-7
    # inside a loss: dL/dW = xᵀ (softmax − onehot(y)) / B, written out
    labels = np.array([0, 2, 1, 1, 0, 2])
    assert gradcheck(lambda w, b: md.cross_entropy(sparse_linear(x, w, b), labels), [weight, bias]).ok
    # and the forward is the dense product
    out = sparse_linear(x, weight, bias).numpy()
    np.testing.assert_allclose(out, x.toarray() @ weight.numpy() + bias.numpy(), rtol=1e-12)


def test_sparse_linear_agrees_with_torch():
    torch = pytest.importorskip("torch")
    x = _sparse(rows=8, columns=12, seed=2)
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    rng = np.random.default_rng(3)
    w0, b0 = rng.normal(size=(12, 2)), rng.normal(size=2)

    weight = md.tensor(w0, dtype="float64", requires_grad=True)
    bias = md.tensor(b0, dtype="float64", requires_grad=True)
    loss = md.cross_entropy(sparse_linear(x, weight, bias), labels)
    loss.backward()

    x_t = torch.tensor(x.toarray())                              # PyTorch on the dense matrix: the oracle
    w_t = torch.tensor(w0, requires_grad=True)
    b_t = torch.tensor(b0, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(x_t @ w_t + b_t, torch.tensor(labels))
    loss_t.backward()
    assert loss.item() == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(weight.grad, w_t.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(bias.grad, b_t.grad.numpy(), rtol=1e-10, atol=1e-14)
    # the formula of the docstring
    logits = x.toarray() @ w0 + b0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weight.grad, x.T @ (p - np.eye(2)[labels]) / len(labels), rtol=1e-10, atol=1e-14)


def test_sparse_linear_refuses_what_it_cannot_multiply():
    x = _sparse()
    with pytest.raises(md.ShapeError, match=r"sparse_linear: expected x \(N, K\), W \(K, M\)"):
        sparse_linear(x, md.zeros(4, 2, requires_grad=True))
    with pytest.raises(md.OpError, match="SciPy sparse x"):
        SparseLinear.apply(x.toarray(), md.zeros(9, 2, requires_grad=True), None)


# ------------------------------------------------------------------------------------------- features

def _grams(tokens, low, high):
    return [" ".join(tokens[t:t + n]) for n in range(low, high + 1) for t in range(len(tokens) - n + 1)]


def test_ngram_counts_match_plain_python():
    rng = np.random.default_rng(0)
    words = ["good", "bad", "not", "film", "plot", "very"]
    train = [list(rng.choice(words, size=rng.integers(0, 12))) for _ in range(40)]
    test = [list(rng.choice(words + ["unseen"], size=rng.integers(0, 12))) for _ in range(15)]
    for low, high, min_df in ((1, 2, 2), (1, 3, 1), (2, 2, 3)):
        vocabulary = NgramVocabulary((low, high), min_df).fit(train)
        df = Counter(g for tokens in train for g in set(_grams(tokens, low, high)))
        kept = sorted((len(g.split()), g) for g, n in df.items() if n >= min_df)
        assert len(vocabulary) == len(kept)
        for docs in (train, test):
            counts = vocabulary.transform(docs).toarray()
            expected = [Counter(g for g in _grams(tokens, low, high) if df[g] >= min_df) for tokens in docs]
            # the columns: n-grams grouped by size; compare as multisets of counts per review
            assert sorted(counts.sum(axis=1).tolist()) == sorted(sum(e.values()) for e in expected)
            assert [sorted(row[row > 0].tolist()) for row in counts] == [sorted(e.values()) for e in expected]
    # a word the training reviews never saw makes no n-gram
    vocabulary = NgramVocabulary((1, 2), 1).fit([["good", "film"]])
    assert vocabulary.transform([["good", "unseen", "film"]]).toarray().tolist() == [[1.0, 1.0, 0.0]]


def test_tfidf_and_nb_features_follow_their_formulas():
    counts = sparse.csr_matrix(np.array([[2.0, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]]))
    df = np.array([2, 2, 2])
    x = tfidf(counts, df, 4).toarray()
    idf = math.log(5 / 3) + 1
    row = np.array([(1 + math.log(2)) * idf, 0, idf])
    np.testing.assert_allclose(x[0], row / np.linalg.norm(row))
    np.testing.assert_allclose(np.linalg.norm(x[:3], axis=1), 1.0)
    assert not x[3].any()                                           # an empty review stays zero

    binary = sparse.csr_matrix(np.array([[1.0, 0, 1], [1, 1, 0], [0, 1, 1]]))
    labels = np.array([1, 1, 0])
    p, q = 1 + np.array([2, 1, 1]), 1 + np.array([0, 1, 1])
    np.testing.assert_allclose(nb_ratios(binary, labels), np.log(p / p.sum()) - np.log(q / q.sum()))

    vocabulary = NgramVocabulary((1, 1), 1).fit([["good", "good", "film"], ["bad", "film"]])
    x_train, x_test = features("nbsvm", vocabulary, [["good", "good", "film"], ["bad", "film"]], np.array([1, 0]),
                               [[["good", "bad"]]])
    r = nb_ratios(sparse.csr_matrix(np.array([[1.0, 1, 0], [0, 1, 1]])), np.array([1, 0]))
    np.testing.assert_allclose(x_train.toarray(), [[r[0], r[1], 0], [0, r[1], r[2]]])   # binarised, then ⊙ r
    np.testing.assert_allclose(x_test.toarray(), [[r[0], 0, r[2]]])


# ------------------------------------------------------------------------------------------- runs

@pytest.mark.parametrize("kind", ["tfidf", "nbsvm"])
def test_run_on_the_synthetic_corpus_beats_chance(kind):
    """The corpus is built against bags of words: 30 % of its reviews are negated, so a linear
    model of the words tops out near 0.7 (unigrams reach it; the filler's bigrams overfit a
    little). Chance is 0.5, with a standard error of 0.016 on the 1,000 test reviews."""
    result = run_baseline(kind, data="synthetic", max_length=30, epochs=3)
    metrics = result["metrics"]
    assert metrics["accuracy"] > 0.57 and metrics["auc"] > 0.6, metrics
    unigrams = run_baseline(kind, data="synthetic", max_length=30, epochs=3, ngrams=(1, 1))["metrics"]
    assert unigrams["accuracy"] > 0.65 and unigrams["auc"] > 0.7, unigrams
    assert result["train"] == 5000 and result["test"] == 1000 and metrics["n"] == 1000
    assert result["vocabulary"] > 100 and result["kind"] == kind and result["max_length"] == 30
    again = run_baseline(kind, data="synthetic", max_length=30, epochs=3)
    assert again["metrics"]["accuracy"] == metrics["accuracy"]     # seeded: the same run twice


def _args(**changes):
    """The options of `minidl baseline`, as its parser gives them."""
    values = dict(kind="tfidf,nbsvm", max_length="100", data="imdb", data_path=None, ngrams="1,2", min_df=2,
                  epochs=5, batch_size=256, lr=None, weight_decay=None, alpha=1.0, seed=0, json=False,
                  text_column="text", label_column="label", test_data=None)
    return argparse.Namespace(**{**values, **changes})


def test_the_command_prints_a_table_or_json(capsys, monkeypatch):
    from minidl import baseline

    reads = []
    monkeypatch.setattr(baseline, "_splits", lambda *a, _read=baseline._splits: reads.append(a) or _read(*a))
    assert main(_args(kind="tfidf", max_length="20,30", data="synthetic", epochs=1)) == 0
    assert len(reads) == 1   # once for both runs (IMDB was read again for each: 8 s a run)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("baselines on synthetic: 5,000 training, 1,000 test reviews; word 1-2-grams")
    assert out[1].split() == ["kind", "max_length", "vocabulary", "accuracy", "f1", "auc", "seconds"]
    assert [line.split()[:2] for line in out[2:]] == [["tfidf", "20"], ["tfidf", "30"]]
    assert main(_args(kind="nbsvm", max_length="30", data="synthetic", epochs=1, json=True)) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["kind"] == "nbsvm" and 0.5 < result["metrics"]["accuracy"] <= 1 and result["vocabulary"] > 100


@pytest.mark.parametrize("changes, message", [
    (dict(kind="svm"), "--kind must be one of tfidf, nbsvm, got 'svm'"),
    (dict(kind="tfidf,"), "--kind must be one of tfidf, nbsvm, got ''"),   # names the empty one
    (dict(max_length="100,0"), "--max-length must be a whole number >= 1, got 0"),
    (dict(max_length="ten"), "--max-length must be comma-separated whole numbers, got 'ten'"),
    (dict(ngrams="1,4"), "--ngrams must be two sizes low,high with 1 <= low <= high <= 3"),
    (dict(ngrams="2,1"), "--ngrams must be two sizes"),
    (dict(min_df=0), "--min-df must be a whole number >= 1"),
    (dict(lr=0.0), "--lr must be a number > 0"),
    (dict(weight_decay=-1.0), "--weight-decay must be a number >= 0"),
    (dict(kind="tfidf", alpha=5.0), "--alpha 5.0 is nbsvm's smoothing; --kind is tfidf"),   # it changed nothing
    (dict(test_data="t.tsv"), "--test-data goes with --data FILE (your own table); the imdb data brings its own"),
])
def test_bad_settings_are_refused_in_one_line_before_any_work(changes, message, monkeypatch):
    ran = []
    monkeypatch.setattr("minidl.baseline.run_baseline", lambda *a, **k: ran.append(a) or {})
    with pytest.raises(BaselineError) as error:
        main(_args(**changes))
    assert message in str(error.value) and "\n" not in str(error.value) and not ran
    assert isinstance(error.value, MinidlError)          # so `minidl` prints it as one line, no traceback


def test_run_baseline_refuses_bad_settings_itself():
    with pytest.raises(BaselineError, match="--kind must be one of tfidf, nbsvm, got 'bow'"):
        run_baseline("bow", data="synthetic")
    with pytest.raises(BaselineError, match="--max-length must be a whole number >= 1, got 0"):
        run_baseline("tfidf", data="synthetic", max_length=0)
    check_settings("nbsvm", 400, (1, 3), 1, 1, 1, 1e-3, 0.0, 0.5)    # fine


def test_a_table_of_yours_with_other_column_names(tmp_path, capsys):
    """baseline had no --text-column / --label-column, though its error told the user to pass them."""
    from minidl.data import make_reviews

    reviews = make_reviews(60, seed=2)
    table = tmp_path / "mine.tsv"
    table.write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in zip(reviews.texts, reviews.labels)))
    assert cli_main(["baseline", "--data", str(table), "--kind", "tfidf", "--epochs", "1"]) == 1
    assert "no column 'text' or 'label'" in capsys.readouterr().err
    assert cli_main(["baseline", "--data", str(table), "--kind", "tfidf", "--epochs", "1", "--text-column", "review",
                     "--label-column", "sentiment", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["train"] + result["test"] == 60 and result["label_names"] == ["0", "1"]
    # its own test file, as train --test-data (there was no option: own data were scored on a 20 % split only)
    test = tmp_path / "test.tsv"
    test.write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in zip(reviews.texts[:7], reviews.labels)))
    assert cli_main(["baseline", "--data", str(table), "--test-data", str(test), "--kind", "tfidf", "--epochs", "1",
                     "--text-column", "review", "--label-column", "sentiment", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert (result["train"], result["test"], result["test_data"]) == (60, 7, str(test))


def test_the_registered_command_answers_in_one_line(capsys):
    """Through `minidl baseline` once minidl/cli.py registers it."""
    try:
        build_parser().parse_args(["baseline", "--kind", "svm"])
    except SystemExit:
        pytest.skip("`minidl baseline` is not registered in minidl/cli.py yet")
    capsys.readouterr()
    assert cli_main(["baseline", "--kind", "svm"]) == 1
    assert cli_main(["baseline", "--max-length", "0"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["minidl baseline: --kind must be one of tfidf, nbsvm, got 'svm'",
                     "minidl baseline: --max-length must be a whole number >= 1, got 0"]
    assert cli_main(["baseline", "--data", "synthetic", "--data-path", "somewhere.csv"]) == 1   # it was ignored
    assert "--data-path 'somewhere.csv': it says where the IMDB data is" in capsys.readouterr().err


def test_nbsvm_on_more_than_two_classes_is_refused_before_tfidf_trains(tmp_path, monkeypatch):
    """The default --kind tfidf,nbsvm trained tfidf, then refused nbsvm; with --label-column text the
    message listed every review's text (23 KB on one line)."""
    ran = []
    monkeypatch.setattr("minidl.baseline.run_baseline", lambda *a, **k: ran.append(a) or {})
    table = tmp_path / "three.csv"
    table.write_text("text,label,note\n" + "".join(f"review number {i} with words,{['good', 'bad', 'meh'][i % 3]},"
                                                   f"note {i} of mine\n" for i in range(60)))
    with pytest.raises(BaselineError, match=r"nbsvm compares two classes; .*three.csv has 3 \(bad, good, meh\)"):
        main(_args(kind="tfidf,nbsvm", data=str(table)))
    from minidl.data.errors import DataWarning

    with pytest.warns(DataWarning, match="has 60 different labels in 60 rows"), pytest.raises(
            BaselineError, match=r"has 60 \(note 0 of mine, .*, \.\.\. 55 more\): use"):
        main(_args(kind="nbsvm", data=str(table), label_column="note"))
    assert not ran


def test_the_default_kinds_on_more_than_two_classes_run_tfidf_alone_and_say_so(tmp_path, monkeypatch, capsys):
    """`minidl baseline --data three.csv` failed by default: the default --kind tfidf,nbsvm refused nbsvm."""
    ran = []
    monkeypatch.setattr("minidl.baseline.run_baseline", lambda kind, **k: ran.append(kind) or {})
    table = tmp_path / "three.csv"
    table.write_text("text,label\n" + "".join(f"review {i},{['good', 'bad', 'meh'][i % 3]}\n" for i in range(60)))
    assert cli_main(["baseline", "--data", str(table), "--json"]) == 0 and ran == ["tfidf"]
    assert capsys.readouterr().err == (f"minidl baseline: {table} has 3 classes and nbsvm compares two: tfidf runs "
                                       f"alone\n")
    assert cli_main(["baseline", "--data", str(table), "--json", "--alpha", "0.5"]) == 1   # it was ignored, unsaid
    assert capsys.readouterr().err == (f"minidl baseline: --alpha 0.5 is nbsvm's smoothing, and nbsvm compares two "
                                       f"classes; {table} has 3\n")

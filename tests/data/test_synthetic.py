"""The synthetic corpus: labels decided by one (maybe negated) sentiment word, controlled
negation distances, deterministic, fast, and not solvable by a bag of words."""

import numpy as np
import pytest

from minidl.data import synthetic
from minidl.data.synthetic import make_corpus, make_negation_probe, make_reviews
from minidl.data.text import Tokenizer
from minidl.data.vocab import Vocabulary

POS, NEG = set(synthetic.POSITIVE_WORDS), set(synthetic.NEGATIVE_WORDS)
NEGATORS, INTENSIFIERS, FILLER = set(synthetic.NEGATORS), set(synthetic.INTENSIFIERS), set(synthetic.FILLER_WORDS)


def test_word_lists_are_disjoint_and_the_filler_is_neutral():
    lists = [POS, NEG, NEGATORS, INTENSIFIERS, FILLER]
    assert sum(map(len, lists)) == len(set().union(*lists))
    assert len(synthetic.POSITIVE_WORDS) == len(synthetic.NEGATIVE_WORDS)
    assert not FILLER & {"no", "nothing", "without", "but", "love", "hate", "best", "worst"}
    assert 100 <= sum(map(len, lists)) <= 200


@pytest.fixture(scope="module")
def corpus():
    return make_reviews(3000, seed=7)


def test_text_passes_through_the_default_tokenizer_unchanged(corpus):
    tokenizer = Tokenizer()
    probe = make_negation_probe(n_per_distance=20)
    for text in corpus.texts + probe.texts:
        assert tokenizer(text) == text.split()


def check_reviews(data, min_length=8, max_length=30):
    for text, label, negated, d, p, polarity, word in zip(
            data.texts, data.labels, data.info["negated"], data.info["distance"],
            data.info["sentiment_position"], data.info["polarity"], data.info["sentiment_word"]):
        words = text.split()
        assert min_length <= len(words) <= max_length
        sentiment = [i for i, w in enumerate(words) if w in POS | NEG]
        assert sentiment == [p] and words[p] == word          # one sentiment word decides
        assert polarity == (word in POS)
        negators = [i for i, w in enumerate(words) if w in NEGATORS]
        assert negators == ([p - d] if negated else []) and negated == (d > 0)
        assert label == (1 - polarity if negated else polarity)
        # between the negator and the sentiment word: only neutral filler and intensifiers
        assert all(w in FILLER | INTENSIFIERS for w in words[p - d + 1:p])
        assert all(i == p - 1 for i, w in enumerate(words) if w in INTENSIFIERS)


def test_labels_follow_the_sentiment_word_and_its_negation(corpus):
    check_reviews(corpus)
    negated = np.array(corpus.info["negated"])
    assert 0.25 < negated.mean() < 0.35                      # negation_prob=0.3
    assert 0.45 < corpus.labels.mean() < 0.55
    assert 0.25 < np.mean(corpus.info["intensified"]) < 0.35
    assert np.mean([w.startswith(("not ", "never ", "hardly ")) for w in corpus.texts]) < 0.05


def test_negation_distances_span_one_to_max_distance(corpus):
    distance = np.array(corpus.info["distance"])
    counts = np.bincount(distance[distance > 0], minlength=13)[1:]
    assert len(counts) == 12 and counts.min() > 40            # about 75 at each distance
    custom = make_reviews(500, seed=0, negation_prob=1.0, max_distance=4, min_length=5, max_length=10)
    assert set(custom.info["distance"]) == {1, 2, 3, 4}
    check_reviews(custom, 5, 10)


def test_deterministic_by_seed():
    assert make_reviews(200, seed=5).texts == make_reviews(200, seed=5).texts
    assert make_reviews(200, seed=5).texts != make_reviews(200, seed=6).texts
    a, b = make_corpus(300, 100, seed=1), make_corpus(300, 100, seed=1)
    assert a["train"].texts == b["train"].texts and a["test"].texts == b["test"].texts
    assert not set(a["train"].texts) & set(a["test"].texts)
    assert a["train"].label_names == ["neg", "pos"] and len(a["test"]) == 100


def test_ten_thousand_reviews():
    # how fast: no wall-clock assertion here (CI machines are shared); make demo prints its time
    assert len(make_reviews(10_000)) == 10_000


def test_negation_probe_has_every_distance_and_both_polarities():
    probe = make_negation_probe(distances=range(1, 13), n_per_distance=50, seed=2)
    check_reviews(probe)
    distance, polarity = np.array(probe.info["distance"]), np.array(probe.info["polarity"])
    assert all(probe.info["negated"]) and len(probe) == 600
    for d in range(1, 13):
        assert (distance == d).sum() == 50 and polarity[distance == d].sum() == 25
    assert (probe.labels == 1 - polarity).all()
    assert make_negation_probe(n_per_distance=4).texts == make_negation_probe(n_per_distance=4).texts


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_distance < max_length"):
        make_reviews(10, max_distance=30)
    with pytest.raises(ValueError, match="negation_prob"):
        make_reviews(10, negation_prob=1.5)
    with pytest.raises(ValueError, match="even"):
        make_negation_probe(n_per_distance=3)
    with pytest.raises(ValueError, match=">= 1"):
        make_negation_probe(distances=[0, 1])


def bag_of_words(data, vocab):
    """(N, V) 0/1 features: which words occur in each review."""
    X = np.zeros((len(data), len(vocab)))
    for i, text in enumerate(data.texts):
        X[i, vocab.encode(text.split())] = 1.0
    return X


def logistic_regression(X, y, steps=300, lr=1.0):
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
        w -= lr * (X.T @ (p - y) / len(y) + 1e-3 * w)
        b -= lr * np.mean(p - y)
    return lambda X: (X @ w + b > 0).astype(np.int64)


def test_a_bag_of_words_cannot_model_negation():
    """Sanity baseline: word presence gets the un-negated reviews right and every negated one wrong."""
    corpus = make_corpus(2000, 1000, seed=0)
    vocab = Vocabulary.build(t.split() for t in corpus["train"].texts)
    predict = logistic_regression(bag_of_words(corpus["train"], vocab), corpus["train"].labels)
    test = corpus["test"]
    correct = predict(bag_of_words(test, vocab)) == test.labels
    negated = np.array(test.info["negated"])
    print(f"bag-of-words logistic regression, test accuracy: {correct.mean():.3f} overall, "
          f"{correct[~negated].mean():.3f} un-negated, {correct[negated].mean():.3f} negated")
    assert correct[~negated].mean() > 0.85
    assert correct[negated].mean() < 0.2                     # fooled: it reads the sentiment word only
    assert correct.mean() < 0.8

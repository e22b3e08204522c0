"""Metrics on cases small enough to compute by hand."""
import numpy as np
import pytest

from minidl import metrics


def test_confusion_and_precision_recall_f1_by_hand():
    y_true = [1, 1, 1, 0, 0, 0, 0, 1]
    y_pred = [1, 0, 1, 0, 1, 0, 0, 1]
    # TP = 3 (0, 2, 7), FN = 1 (1), FP = 1 (4), TN = 3
    assert metrics.confusion_matrix(y_true, y_pred).tolist() == [[3, 1], [1, 3]]
    precision, recall, f1 = metrics.precision_recall_f1(y_true, y_pred)
    assert (precision, recall) == (0.75, 0.75)
    assert f1 == pytest.approx(0.75)
    assert metrics.accuracy(y_true, y_pred) == 0.75


def test_f1_is_the_harmonic_mean():
    # TP = 1, FP = 3, FN = 0: precision 1/4, recall 1, F1 = 2·(1/4)·1 / (5/4) = 0.4
    assert metrics.precision_recall_f1([1, 0, 0, 0], [1, 1, 1, 1])[2] == pytest.approx(0.4)


def test_no_positive_predictions_scores_zero_not_nan():
    assert metrics.precision_recall_f1([1, 0], [0, 0]) == (0.0, 0.0, 0.0)


def test_roc_auc_by_hand_with_ties():
    # positives score 0.9, 0.4; negatives 0.4, 0.1 -> pairs: (0.9>0.4) 1, (0.9>0.1) 1, (0.4=0.4) 0.5, (0.4>0.1) 1
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert metrics.roc_auc([1, 0], [0.2, 0.8]) == 0.0
    assert np.isnan(metrics.roc_auc([1, 1], [0.2, 0.8]))


def test_roc_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 1)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert metrics.roc_auc(y, s) == pytest.approx(pairwise, abs=1e-12)


def test_report_multiclass_macro():
    probabilities = np.eye(3)[[0, 1, 2, 2]]
    report = metrics.classification_report([0, 1, 2, 1], probabilities, loss=0.5)
    assert report["accuracy"] == 0.75
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    # per class (P, R): 0 -> (1, 1), 1 -> (1, 0.5), 2 -> (0.5, 1)
    assert report["precision"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert report["recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert report["loss"] == 0.5


def test_a_class_absent_from_the_truth_and_the_predictions_counts_in_no_average():
    """A file scored that holds one class (allowed): a perfect model read precision, recall, F1 0.3333 with
    three classes, and 0 with two; scikit-learn averages over the classes present and has no binary F1 then."""
    report = metrics.classification_report([2, 2], np.eye(3)[[2, 2]])
    assert (report["precision"], report["recall"], report["f1"]) == (1.0, 1.0, 1.0)
    binary = metrics.classification_report([0, 0], np.array([[0.9, 0.1], [0.8, 0.2]]))
    assert binary["accuracy"] == 1.0 and all(np.isnan(binary[k]) for k in ("precision", "recall", "f1", "auc"))
    assert [metrics.cell(binary[k]) for k in ("precision", "f1")] == ["-", "-"]
    # a class in the truth but never predicted, or predicted but absent, still scores 0 (the usual convention)
    assert metrics.precision_recall_f1([0, 0], [1, 0]) == (0.0, 0.0, 0.0)


def test_a_multiclass_auc_undefined_for_every_class_is_nan_without_a_warning(recwarn):
    """Reviews of one class: every per-class AUC is NaN, and NumPy's "Mean of empty slice" reached stderr."""
    report = metrics.classification_report([1, 1], np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]))
    assert np.isnan(report["auc"]) and report["accuracy"] == 0.5 and not recwarn.list


def test_the_printed_report_says_which_class_precision_recall_and_f1_are_of():
    """Two classes: they are of the second label, which the table never said (with labels 2=good,1=bad: of "bad")."""
    report = metrics.classification_report([0, 1], np.eye(2))
    lines = metrics.format_report(report, ["good", "bad"], "t").splitlines()
    assert lines[3] == "  (precision, recall, F1, AUC: of 'bad')"
    three = metrics.classification_report([0, 1, 2], np.eye(3))
    assert "macro averages over the classes present" in metrics.format_report(three, ["a", "b", "c"], "t")


def test_labels_of_another_shape_are_refused_not_broadcast():
    """Labels as a (N, 1) column broadcast against (N,) predictions into an (N, N) table: a perfect model read
    accuracy 0.5 and precision, recall and F1 2.0; probabilities of one class failed deep in NumPy."""
    column, predicted = np.array([[0], [1], [1], [0]]), np.array([0, 1, 1, 0])
    for metric in (metrics.accuracy, metrics.precision_recall_f1, metrics.roc_auc, metrics.confusion_matrix):
        with pytest.raises(ValueError, match=r"must both be \(N,\) arrays, got shapes \(4, 1\) and \(4,\)"):
            metric(column, predicted)
    with pytest.raises(ValueError, match=r"must be \(N, C\) for N = 4 labels, got shape \(4,\)"):
        metrics.classification_report(predicted, np.array([0.2, 0.8, 0.6, 0.1]))
    assert metrics.accuracy(column[:, 0], predicted) == metrics.accuracy(column, predicted[:, None]) == 1.0
    assert metrics.roc_auc(np.array(["pos", "neg", "pos"]), [0.9, 0.1, 0.8], positive="pos") == 1.0   # text labels
    one_hot = np.eye(2, dtype=int)[[0, 1, 0]]   # (N, C): read as N·C "samples"
    with pytest.raises(ValueError, match=r"got shapes \(3, 2\) and \(3, 2\)"):
        metrics.confusion_matrix(one_hot, one_hot)

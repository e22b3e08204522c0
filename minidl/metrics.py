"""Classification metrics, written out so each one can be checked by hand.

All take NumPy arrays: ``y_true`` (N,) ints; ``y_pred`` (N,) ints; ``scores`` (N,) floats
(the probability, or any monotone score, of the positive class). Binary metrics treat
class ``positive`` (default 1) as positive; with more classes, the macro average of the
per-class one-vs-rest values, over the classes in the truth or the predictions (as scikit-learn's).
"""
from __future__ import annotations

import numpy as np


def _pair(name, y_true, other, what="predictions"):
    """``y_true`` and the predictions or scores as (N,) arrays, refused unless both have one shape:
    a (N, 1) column broadcast against a row into an (N, N) table (precision 2.0), silently."""
    y_true, other = np.asarray(y_true), np.asarray(other)
    if other.shape != y_true.shape or y_true.ndim == 0 or y_true.shape[1:] not in ((), (1,)):   # one-hot: N·C
        raise ValueError(f"{name}: the true labels and the {what} must both be (N,) arrays, got shapes "
                         f"{y_true.shape} and {other.shape}")
    return y_true.ravel(), other.ravel()


def confusion_matrix(y_true, y_pred, num_classes=None):
    """(C, C) counts: row = true class, column = predicted class."""
    y_true, y_pred = (a.astype(np.int64) for a in _pair("confusion_matrix", y_true, y_pred))
    C = num_classes or int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    return np.bincount(y_true * C + y_pred, minlength=C * C).reshape(C, C)


def accuracy(y_true, y_pred):
    y_true, y_pred = _pair("accuracy", y_true, y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def _divide(a, b):
    return float(a / b) if b else 0.0  # the usual convention: an empty denominator scores 0


def precision_recall_f1(y_true, y_pred, positive=1):
    """(precision, recall, F1) of class ``positive``: TP/(TP+FP), TP/(TP+FN), their harmonic mean;
    NaN, all three, for a class neither in ``y_true`` nor predicted (a perfect model read 0)."""
    y_true, y_pred = _pair("precision_recall_f1", y_true, y_pred)
    predicted, actual = y_pred == positive, y_true == positive
    if not (predicted.any() or actual.any()):
        return float("nan"), float("nan"), float("nan")
    tp = int(np.sum(predicted & actual))
    precision, recall = _divide(tp, int(np.sum(predicted))), _divide(tp, int(np.sum(actual)))  # TP + FP, TP + FN
    return precision, recall, _divide(2 * precision * recall, precision + recall)


def roc_auc(y_true, scores, positive=1):
    """Area under the ROC curve = P(score of a random positive > score of a random negative),
    ties counting one half (the Mann–Whitney U statistic, from average ranks)."""
    y_true, scores = _pair("roc_auc", y_true, scores, "scores")
    scores = scores.astype(np.float64)
    is_pos = y_true == positive
    n_pos, n_neg = int(is_pos.sum()), int((~is_pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")  # undefined with one class only
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    # average rank within each group of tied scores (ranks start at 1)
    starts = np.r_[0, np.flatnonzero(np.diff(scores[order])) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return float((ranks[is_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_report(y_true, probabilities, loss=None):
    """Every metric of a run from class probabilities (N, C): accuracy, precision, recall, F1,
    ROC-AUC (binary: class 1; more classes: macro over one-vs-rest), the confusion matrix."""
    probabilities = np.asarray(probabilities)
    y_true = np.asarray(y_true)
    if probabilities.ndim != 2 or probabilities.shape[0] != len(y_true):
        raise ValueError(f"classification_report: the probabilities must be (N, C) for N = {len(y_true)} labels, "
                         f"got shape {probabilities.shape}")
    y_pred = probabilities.argmax(axis=1)
    C = probabilities.shape[1]
    if C == 2:
        precision, recall, f1 = precision_recall_f1(y_true, y_pred)
        auc = roc_auc(y_true, probabilities[:, 1])
    else:
        per_class = [precision_recall_f1(y_true, y_pred, c) for c in range(C)]   # NaN for a class absent
        precision, recall, f1 = map(_macro, zip(*per_class))
        auc = _macro([roc_auc(y_true, probabilities[:, c], c) for c in range(C)])   # NaN: a class absent or alone
    report = {"accuracy": accuracy(y_true, y_pred), "precision": precision, "recall": recall, "f1": f1,
              "auc": auc, "confusion_matrix": confusion_matrix(y_true, y_pred, C).tolist(), "n": int(len(y_true))}
    if loss is not None:
        report["loss"] = float(loss)
    return report


def _macro(values):
    """The mean of the defined (not NaN) ``values``; NaN if none is (NumPy's nanmean warns then)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")


def cell(value):
    """A metric as a table shows it: four decimals, "-" for an undefined one (None or NaN)."""
    return "-" if value is None or value != value else f"{value:.4f}"


def format_report(report, label_names, title):
    """``classification_report``'s numbers as a table people read: the metrics in one row
    (undefined ones as "-"), which class they are of, then the confusion matrix with its labels
    (rows: the truth)."""
    keys = [k for k in ("accuracy", "precision", "recall", "f1", "auc", "loss") if k in report]
    names = [str(n) for n in label_names]
    of = f"of {names[1]!r}" if len(names) == 2 else "macro averages over the classes present"   # it went unsaid
    lines = [title, "  " + "  ".join(f"{k:>9}" for k in keys), "  " + "  ".join(f"{cell(report[k]):>9}" for k in keys),
             f"  (precision, recall, F1, AUC: {of})"]
    width = max(7, *(len(n) + 1 for n in names))
    lines += ["", "confusion matrix (rows: true label, columns: predicted)",
              " " * (width + 2) + "".join(f"{n:>{width}}" for n in names)]
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"  {name:<{width}}" + "".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)

"""Metrics against scikit-learn on small fixed arrays, ties and skipped labels included."""

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    roc_auc_score,
)

from training.linear.metrics import average_precision, balanced_accuracy, clipwise, roc_auc, score

RNG = np.random.default_rng(3)
Y = (RNG.random((40, 6)) < 0.35).astype(np.float32)
P = RNG.random((40, 6))
P_TIED = np.round(P * 4) / 4  # few distinct values: exercises tie handling


@pytest.mark.parametrize("scores", [P, P_TIED])
def test_binary_scores_match_sklearn(scores):
    for j in range(Y.shape[1]):
        assert roc_auc(Y[:, j], scores[:, j]) == pytest.approx(roc_auc_score(Y[:, j], scores[:, j]))
        assert average_precision(Y[:, j], scores[:, j]) == pytest.approx(
            average_precision_score(Y[:, j], scores[:, j])
        )


def test_tagwise_macro_matches_sklearn_and_skips_single_class_labels():
    y = Y.copy()
    y[:, 2] = 0.0  # no positive in the test set
    y[:, 4] = 1.0  # no negative
    labels = tuple("abcdef")
    s = score(y, P, labels, "multilabel")
    keep = [0, 1, 3, 5]
    assert s.metrics["tag_roc_auc"] == pytest.approx(roc_auc_score(y[:, keep], P[:, keep]))
    assert s.metrics["tag_pr_auc"] == pytest.approx(
        average_precision_score(y[:, keep], P[:, keep], average="macro")
    )
    assert s.skipped == ("c", "e")
    assert s.metrics["labels_skipped"] == 2 and s.metrics["labels_scored"] == 4
    assert np.isnan(s.per_label["c"]["roc_auc"])
    assert s.per_label["a"]["positives"] == y[:, 0].sum()
    assert "accuracy" not in s.metrics


def test_clipwise_matches_sklearn_samples_average():
    y = Y.copy()
    y[0] = 0.0  # an item with no positive label is skipped
    roc, pr, skipped = clipwise(y, P)
    usable = np.asarray(y.any(axis=1) & ~y.all(axis=1))
    assert not usable[0] and skipped == (~usable).sum() < len(y) // 2
    assert roc == pytest.approx(roc_auc_score(y[usable], P[usable], average="samples"))
    assert pr == pytest.approx(average_precision_score(y[usable], P[usable], average="samples"))


def test_multiclass_accuracy_and_balanced_accuracy():
    true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 2, 2, 2, 0, 2])
    assert balanced_accuracy(true, pred) == pytest.approx(balanced_accuracy_score(true, pred))
    onehot = np.eye(3, dtype=np.float32)[true]
    probs = np.eye(3)[pred] * 0.8 + 0.1
    s = score(onehot, probs, ("a", "b", "c"), "multiclass")
    assert s.metrics["accuracy"] == pytest.approx(0.7)
    assert s.metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(true, pred))


def test_soft_targets_are_thresholded_at_half():
    soft = np.array([[0.9, 0.2], [0.6, 0.4], [0.1, 0.7], [0.3, 0.55]], dtype=np.float32)
    probs = np.array([[0.8, 0.1], [0.7, 0.3], [0.2, 0.9], [0.4, 0.6]])
    s = score(soft, probs, ("x", "y"), "soft")
    assert s.metrics["tag_roc_auc"] == pytest.approx(1.0)
    assert s.per_label["x"]["positives"] == 2

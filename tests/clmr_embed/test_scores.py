"""Tests of clmr_embed.scores: sigmoid/softmax probabilities, track scores, the best tags."""

from __future__ import annotations

import numpy as np

from clmr_embed.scores import best_tags, probabilities, track_scores


def test_tagging_helpers() -> None:
    logits = np.array([[0.0, 2.0], [0.0, -2.0]], np.float32)
    probs = probabilities(logits, "multilabel")
    np.testing.assert_allclose(probs[0], [0.5, 1 / (1 + np.exp(-2))], atol=1e-6)
    scores = track_scores(probs)
    np.testing.assert_allclose(scores, [0.5, 0.5], atol=1e-6)
    best = best_tags(np.array([0.1, 0.9, 0.5], np.float32), ("a", "b", "c"), 2)
    assert [t.label for t in best] == ["b", "c"]


def test_softmax_rows_sum_to_one_and_ties_keep_label_order() -> None:
    probs = probabilities(np.array([[1000.0, 1000.0, -5.0]], np.float32), "multiclass")
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)  # no overflow at 1000
    best = best_tags(np.array([0.5, 0.5, 0.1], np.float32), ("a", "b", "c"), 3)
    assert [t.label for t in best] == ["a", "b", "c"]

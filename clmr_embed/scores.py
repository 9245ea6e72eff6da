"""Tag probabilities from logits: sigmoid or softmax per the model's task, track scores, top-k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clmr_embed.pooling import track_mean


@dataclass(frozen=True)
class TagScore:
    """One label's probability for a track (or a window)."""

    label: str  # label name from the model's metadata
    score: float  # probability in [0, 1]


def probabilities(logits: npt.NDArray[np.float32], task: str) -> npt.NDArray[np.float32]:
    """Per-window probabilities from logits (n_windows, n_labels).

    Multi-label models get an independent sigmoid per label (CLMR's evaluation; the original web
    demo's softmax made tags compete, CLMR issue #3); single-label models get a softmax.
    """
    x = np.asarray(logits, dtype=np.float64)
    if task == "multiclass":
        shifted = np.exp(x - x.max(axis=-1, keepdims=True))
        probabilities: npt.NDArray[np.float32] = (
            shifted / shifted.sum(axis=-1, keepdims=True)
        ).astype(np.float32)
        return probabilities
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # overflow-free sigmoid


def track_scores(window_probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A track's label scores: the mean of its windows' probabilities (as CLMR evaluates)."""
    return track_mean(window_probs)


def best_tags(
    scores: npt.NDArray[np.float32], labels: tuple[str, ...], top_k: int
) -> list[TagScore]:
    """The `top_k` best labels, highest score first (ties keep the model's label order)."""
    order = np.argsort(-scores, kind="stable")[: max(top_k, 0)]
    return [TagScore(labels[i], float(scores[i])) for i in order]

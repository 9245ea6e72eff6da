"""Excerpt retrieval: is an excerpt's nearest neighbour another excerpt of the same song?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class RetrievalScore:
    """Nearest-neighbour retrieval of excerpts among the excerpts of several songs."""

    top1: float  # share of queries whose nearest neighbour comes from the same song
    map: float  # mean average precision of the same-song excerpts in each query's ranking
    chance: float  # the expected top1 of a random ranking (same-song share of the candidates)
    queries: int  # excerpts used as queries (every excerpt with a same-song candidate)
    songs: int  # songs with at least one query
    exclude: int  # excerpts within this many positions of the query were not candidates

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready fields."""
        return {
            "top1": self.top1,
            "map": self.map,
            "chance": self.chance,
            "queries": self.queries,
            "songs": self.songs,
            "exclude": self.exclude,
        }


def centred_cosine(embeddings: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Cosine similarities after subtracting the mean embedding, float64 [n, n].

    Centring removes the direction every excerpt shares (large in CNN embeddings, whose
    activations are mostly positive), which otherwise makes all cosines close to 1.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity: npt.NDArray[np.float64] = x @ x.T
    return similarity


def _cosine(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x @ x.T


def excerpt_retrieval(tracks: Sequence[npt.ArrayLike], exclude: int = 1) -> RetrievalScore:
    """Top-1 and mAP of same-song retrieval over the window embeddings of several songs.

    Args:
        tracks: one [n_windows, dim] array per song, windows in time order.
        exclude: excerpts of the query's own song at most this many windows away from it (the
            query itself included) are not candidates, so that retrieval cannot win on the
            music that continues across a window boundary.

    Returns:
        The share of queries whose nearest neighbour (centred cosine) is from the same song, the
        mean average precision of same-song candidates over each query's whole ranking (it sees
        every same-song excerpt, not just the nearest, so it separates models near top-1's
        ceiling), and the chance level of top-1.
    """
    if exclude < 0:
        raise ValueError(f"exclude must be >= 0, got {exclude}")
    blocks = [np.asarray(t, dtype=np.float64) for t in tracks]
    song = np.concatenate([np.full(len(b), i) for i, b in enumerate(blocks)])
    position = np.concatenate([np.arange(len(b)) for b in blocks])
    sims = centred_cosine(np.concatenate(blocks))
    same = song[:, None] == song[None, :]
    near = same & (np.abs(position[:, None] - position[None, :]) <= exclude)
    sims[near] = -np.inf
    candidates = ~near
    usable = (same & candidates).any(axis=1)
    if not usable.any():
        raise ValueError("no query has a same-song candidate; give songs with more windows")
    best = sims.argmax(axis=1)
    hits = song[best] == song
    relevant = same & candidates
    chance = relevant.sum(axis=1) / candidates.sum(axis=1)
    precisions = [_average_precision(sims[i], relevant[i]) for i in np.flatnonzero(usable)]
    return RetrievalScore(
        top1=float(hits[usable].mean()),
        map=float(np.mean(precisions)),
        chance=float(chance[usable].mean()),
        queries=int(usable.sum()),
        songs=len(np.unique(song[usable])),
        exclude=exclude,
    )


def _average_precision(scores: npt.NDArray[np.float64], relevant: npt.NDArray[np.bool_]) -> float:
    """AP of one ranking by descending score: the mean precision at each relevant item's rank."""
    ranked = relevant[np.argsort(-scores, kind="stable")]
    hits = np.cumsum(ranked)
    return float((hits[ranked] / (np.flatnonzero(ranked) + 1)).mean())


def pair_mrr(first: npt.ArrayLike, second: npt.ArrayLike, centre: bool = True) -> float:
    """Mean reciprocal rank of same-track retrieval with two excerpt vectors per track
    (the mean of `reciprocal_ranks`)."""
    return float(reciprocal_ranks(first, second, centre).mean())


def reciprocal_ranks(
    first: npt.ArrayLike, second: npt.ArrayLike, centre: bool = True
) -> npt.NDArray[np.float64]:
    """Each excerpt's 1 / rank of its sibling in same-track retrieval, [2n] (queries of `first`
    first): two models' values pair up query by query.

    Row i of `first` and of `second` are two excerpts of track i. Each of the 2n excerpts queries
    the other 2n - 1 by centred cosine (plain cosine with centre=False: what a user who indexes
    raw embeddings gets); its score is 1 / the rank of its sibling. 1.0 is perfect; a random
    ranking gives about ln(2n) / (2n).
    """
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or len(a) < 2:
        raise ValueError(
            f"need two [n_tracks >= 2, dim] arrays of one shape, got {a.shape}, {b.shape}"
        )
    n = len(a)
    both = np.concatenate([a, b])
    sims = centred_cosine(both) if centre else _cosine(both)
    np.fill_diagonal(sims, -np.inf)
    sibling = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    target = sims[np.arange(2 * n), sibling]
    ranks = 1 + (sims > target[:, None]).sum(axis=1)
    reciprocal: npt.NDArray[np.float64] = 1.0 / ranks
    return reciprocal

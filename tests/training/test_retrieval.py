"""training.retrieval: same-song nearest-neighbour retrieval with centred cosine."""

import numpy as np
import pytest

from training.retrieval import centred_cosine, excerpt_retrieval, pair_mrr, reciprocal_ranks


def songs(n_songs: int, n_windows: int, spread: float, seed: int = 0) -> list[np.ndarray]:
    """Window embeddings around one centre per song (a shared offset on top, as CNNs have)."""
    rng = np.random.default_rng(seed)
    offset = rng.uniform(5, 10, 32)
    return [
        offset + rng.normal(0, 1, 32) + rng.normal(0, spread, (n_windows, 32))
        for _ in range(n_songs)
    ]


def test_separated_songs_are_always_retrieved() -> None:
    score = excerpt_retrieval(songs(4, 10, spread=0.01))
    assert score.top1 == 1.0 and score.queries == 40 and score.songs == 4


def test_noise_gives_about_chance() -> None:
    score = excerpt_retrieval(songs(5, 40, spread=100.0, seed=1))
    assert abs(score.top1 - score.chance) < 0.08
    # chance: 37 same-song candidates (query and 2 neighbours excluded) among 197; 38 of 198
    # at the two ends of a song
    assert score.chance == pytest.approx((38 * 37 / 197 + 2 * 38 / 198) / 40)


def test_exclude_removes_the_time_neighbours() -> None:
    # Each song drifts slowly: a window's nearest neighbour is its time neighbour, which the
    # default exclusion removes, so only songs longer than 3 windows still have queries.
    rng = np.random.default_rng(2)
    drift = [np.cumsum(rng.normal(0, 1, (n, 16)), axis=0) for n in (3, 8)]
    with_neighbours = excerpt_retrieval(drift, exclude=0)
    without = excerpt_retrieval(drift, exclude=1)
    assert with_neighbours.queries == 11 and without.queries == 10  # middle of 3: none
    assert excerpt_retrieval(drift, exclude=2).queries == 8  # the 3-window song has none left
    with pytest.raises(ValueError, match="same-song"):
        excerpt_retrieval([drift[0]], exclude=5)


def test_centring_removes_the_shared_direction() -> None:
    x = np.array([[10.0, 10.0, 1.0], [10.0, 10.0, -1.0]])
    assert centred_cosine(x)[0, 1] == pytest.approx(-1.0)
    raw = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert (raw @ raw.T)[0, 1] > 0.98


def test_map_by_hand() -> None:
    # Song A = windows 0, 1 (far apart in time, exclude=0), song B = window 2. Query 0 ranks
    # B's window above A's other window: top-1 misses, AP = 1/2. Query 1 likewise; query 2 has
    # no same-song candidate and is not a query.
    a0, a1, b = [1.0, 0.0], [-1.0, 0.1], [0.0, 1.0]
    score = excerpt_retrieval([np.array([a0, a1]), np.array([b])], exclude=0)
    assert score.queries == 2 and score.top1 == 0.0 and score.map == pytest.approx(0.5)
    assert excerpt_retrieval(songs(3, 6, spread=0.01)).map == 1.0


def test_pair_mrr_perfect_chance_and_hand_computed():

    rng = np.random.default_rng(0)
    tracks = rng.standard_normal((20, 16))
    assert pair_mrr(tracks, tracks + 1e-6 * rng.standard_normal((20, 16))) == 1.0
    shuffled = [
        pair_mrr(rng.standard_normal((20, 16)), rng.standard_normal((20, 16))) for _ in range(50)
    ]
    assert 0.05 < np.mean(shuffled) < 0.2  # chance ~ ln(40)/40 = 0.09
    # an independent brute-force reference on random data: rank of the sibling by sorting
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    x = np.concatenate([a, b])
    x = x - x.mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    reciprocal = []
    for q in range(14):
        order = [j for j in np.argsort(-(x @ x[q]), kind="stable") if j != q]
        reciprocal.append(1 / (1 + order.index((q + 7) % 14)))
    assert abs(pair_mrr(a, b) - np.mean(reciprocal)) < 1e-12


def test_pair_mrr_plain_cosine_is_the_uncentred_ranking():
    rng = np.random.default_rng(0)
    first = rng.standard_normal((12, 6)) + 3.0  # a shared offset: centring changes the ranks
    second = first + 0.8 * rng.standard_normal((12, 6))
    x = np.concatenate([first, second])
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    reciprocal = []
    for q in range(24):  # a plain-loop reference: rank of the sibling by raw cosine
        sims = [(unit[q] @ unit[c], c) for c in range(24) if c != q]
        sibling = (q + 12) % 24
        target = next(v for v, c in sims if c == sibling)
        reciprocal.append(1 / (1 + sum(v > target for v, _ in sims)))
    plain = pair_mrr(first, second, centre=False)
    assert abs(plain - np.mean(reciprocal)) < 1e-12
    assert plain != pair_mrr(first, second)


def test_reciprocal_ranks_are_per_query_and_average_to_the_mrr():
    rng = np.random.default_rng(3)
    first, second = rng.standard_normal((2, 12, 8))
    ranks = reciprocal_ranks(first, second)
    assert ranks.shape == (24,) and ((ranks > 0) & (ranks <= 1)).all()
    assert abs(ranks.mean() - pair_mrr(first, second)) < 1e-12
    found = reciprocal_ranks(first, first + 1e-6)  # each sibling is its query's nearest
    assert np.array_equal(found, np.ones(24))

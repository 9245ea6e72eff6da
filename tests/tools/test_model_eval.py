"""tools.model_eval: how teacher scores are binarised for the agreement figure."""

import numpy as np

from tools.model_eval import DEMO_SONGS, binarise_quantile, binarise_top_k


def test_top_k_marks_each_rows_best_tags() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.8, 0.1, 0.2, 0.7]])
    assert binarise_top_k(scores, k=2).tolist() == [
        [False, True, True, False],
        [True, False, False, True],
    ]
    ties = binarise_top_k(np.zeros((1, 4)), k=1)
    assert ties.tolist() == [[True, False, False, False]]  # ties: first column, exactly k


def test_quantile_gives_every_tag_positives() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, (40, 50)) * rng.uniform(0.01, 1, 50)  # tags on different scales
    truth = binarise_quantile(scores, q=0.75)
    assert (truth.sum(axis=0) == 10).all()  # the top quarter of 40 tracks, for every tag
    assert (truth == (scores > np.quantile(scores, 0.75, axis=0))).all()


def test_demo_songs_are_distinct_recordings() -> None:
    stems = {name.removesuffix(".mp3").removesuffix("_22050") for name in DEMO_SONGS}
    assert len(stems) == len(DEMO_SONGS) == 4

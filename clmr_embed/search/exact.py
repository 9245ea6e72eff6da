"""Exact nearest rows by inner product (cosine on unit vectors), in numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clmr_embed.search.vectors import Matrix


def top_k_rows(
    vectors: Matrix, query: Matrix, count: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The `count` rows with the largest inner product with `query`, best first.

    Args:
        vectors: (n, dim) unit rows.
        query: (dim,) unit vector.
        count: how many rows; fewer when n is smaller.

    Returns:
        (row indices int64, scores float32), both (min(count, n),); ties keep row order.
    """
    scores = vectors @ query.astype(np.float32)
    count = min(max(count, 0), len(scores))
    if count == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    best = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(count)
    best = best[np.lexsort((best, -scores[best]))]
    return best.astype(np.int64), scores[best].astype(np.float32)

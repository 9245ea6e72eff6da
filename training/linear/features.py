"""Frozen window embeddings per labelled item, read from a `clmr-embed extract` store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import DataError
from clmr_embed.store import open_store


@dataclass(frozen=True)
class Features:
    """Window embeddings per item, in the item order of a LabelledSet."""

    windows: tuple[npt.NDArray[np.float32], ...]  # item i: float32 [n_windows_i >= 1, dim]

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.windows[0].shape[1])

    def __len__(self) -> int:
        return len(self.windows)


def features_from_store(store_path: Path, relpaths: Sequence[str]) -> Features:
    """Window embeddings of `relpaths` (e.g. LabelledSet.relpaths) from an `extract` store.

    A store made by extracting a sub-folder of the data root (e.g. `audio/` under a manifest's
    folder) is matched by dropping the same leading folders from every relpath.

    Raises:
        DataError: some relpaths are not in the store (the message counts them, shows one, and
            says whether extract recorded it as failed).
    """
    with open_store(Path(store_path)) as store:
        # A store extracted from a sub-folder of the data root names files without its prefix.
        depth = max((r.count("/") for r in relpaths), default=0)
        for cut in range(depth + 1):
            keys = [r.split("/", cut)[-1] for r in relpaths]
            if all(k in store for k in keys):
                relpaths = keys
                break
        missing = [r for r in relpaths if r not in store]
        if missing:
            failed = store.errors.get(missing[0])
            why = f" (extract failed on it: {failed})" if failed else ""
            raise DataError(
                f"{len(missing)} of {len(relpaths)} labelled files are not in {store_path}, e.g. "
                f"{missing[0]!r}{why}; run `clmr-embed extract` on the data root, or drop them"
            )
        return Features(tuple(store.embeddings(r).astype(np.float32, copy=False) for r in relpaths))

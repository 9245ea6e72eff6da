"""Spaces of a store: centred unit rows, aliases left out, labels that match the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import ConfigError
from clmr_embed.search.exact import top_k_rows
from clmr_embed.search.vectors import canonical_id, load_space, normalise, row_count
from clmr_embed.store import open_store
from tests.clmr_embed.search.stores import extract, tiny_library


def test_rows_are_centred_unit_vectors_of_the_store(tiny_h5: Path) -> None:
    with open_store(tiny_h5) as store:
        tracks = load_space(store, "tracks")
        windows = load_space(store, "windows")
        means = np.stack([store.mean(t) for t in tracks.labels.track_ids])
        assert np.allclose(tracks.labels.centre, means.mean(axis=0), atol=1e-6)
        assert np.allclose(np.linalg.norm(tracks.vectors, axis=1), 1, atol=1e-5)
        expected = (means - means.mean(axis=0)) / np.linalg.norm(
            means - means.mean(axis=0), axis=1, keepdims=True
        )
        assert np.allclose(tracks.vectors, expected, atol=1e-5)
        assert (
            len(windows.vectors)
            == row_count(store, "windows")
            == sum(len(store.embeddings(t)) for t in tracks.labels.track_ids)
        )
        first = tracks.labels.track_ids[2]
        rows = np.flatnonzero(windows.labels.rows == 2)
        assert np.allclose(windows.labels.starts_s[rows], store.starts_s(first))


def test_aliases_are_left_out_and_resolve_to_their_track(tmp_path: Path, tiny_tagger: Path):
    library = tiny_library(tmp_path / "lib", n=3)
    shutil.copyfile(library / "tone_01.wav", library / "copy_of_tone_01.wav")
    with open_store(extract(library, tmp_path / "s.h5", tiny_tagger)) as store:
        space = load_space(store, "tracks")
        assert len(store) == 4 and len(space.vectors) == 3
        pair = {"copy_of_tone_01.wav", "tone_01.wav"}
        (kept,) = pair & set(space.labels.relpaths)  # one of the identical files, not both
        (alias,) = pair - {kept}
        target = canonical_id(store, alias)
        assert store.attrs(target)["relpath"] == kept and store.attrs(target)["alias_of"] == ""
        assert canonical_id(store, kept) == target


def test_normalise_keeps_a_row_equal_to_the_centre_at_zero() -> None:
    rows = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 2.0]], np.float32)
    unit = normalise(rows, rows.mean(axis=0))
    assert np.allclose(unit, [[-1, 0], [1, 0], [0, 0]])


def test_exact_top_k_is_the_sorted_best_with_ties_in_row_order() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    query = rng.standard_normal(16).astype(np.float32)
    rows, scores = top_k_rows(vectors, query, 7)
    assert rows.tolist() == np.argsort(-(vectors @ query), kind="stable")[:7].tolist()
    assert np.allclose(scores, (vectors @ query)[rows])
    tied = np.ones((4, 2), np.float32)
    assert top_k_rows(tied, np.ones(2, np.float32), 3)[0].tolist() == [0, 1, 2]
    assert len(top_k_rows(tied, np.ones(2, np.float32), 10)[0]) == 4


def test_an_unknown_level_is_refused(tiny_h5: Path) -> None:
    with open_store(tiny_h5) as store, pytest.raises(ConfigError, match="level"):
        load_space(store, "albums")

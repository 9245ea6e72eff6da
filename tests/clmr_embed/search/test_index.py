"""The approximate index: recall against exact search, built once, rebuilt when a store changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clmr_embed.search import SearchConfig, Searcher, sidecar_dir, store_fingerprint
from clmr_embed.store import compact_store, copy_store, open_store
from tests.clmr_embed.search.stores import TINY_RATE, extract, reembed, require, tone
from tests.fixtures.audio import write_audio

# the index path on any store, built on one thread: a multi-threaded HNSW build differs run to
# run and now and then misses a true neighbour of this tiny store
FORCED = SearchConfig(index_threshold=0, cache=False, threads=1)


def _keys(neighbours: list) -> set[tuple[str, float | None]]:
    return {(n.track_id, None if n.start_s is None else round(n.start_s, 3)) for n in neighbours}


def test_index_recall_at_10_on_real_windows_is_at_least_95_percent(demo_h5: Path) -> None:
    require("usearch")
    with open_store(demo_h5) as store:
        exact = Searcher(store, "windows", SearchConfig(cache=False))
        approx = Searcher(store, "windows", FORCED)
        assert (exact.backend, approx.backend) == ("exact", "usearch")
        rng = np.random.default_rng(0)
        tracks = rng.choice(store.track_ids, 40)
        queries = [store.embeddings(t)[rng.integers(len(store.embeddings(t)))] for t in tracks]
        hits = [
            len(_keys(approx.nearest(q, 10)) & _keys(exact.nearest(q, 10))) / 10 for q in queries
        ]
        assert np.mean(hits) >= 0.95
        query = store.mean(store.track_ids[0])
        assert _keys(approx.nearest(query, 5, store.track_ids[0])).isdisjoint(
            {(store.track_ids[0], None)}
        )


def test_index_is_cached_beside_the_store_and_rebuilt_when_it_changes(
    tiny_h5: Path, tiny_tagger: Path, tmp_path: Path
) -> None:
    require("usearch")
    builds: list[tuple[str, int]] = []
    config = SearchConfig(
        index_threshold=0, on_build=lambda level, rows: builds.append((level, rows))
    )
    with open_store(tiny_h5) as store:
        first = Searcher(store, "tracks", config)
        query = store.mean("tone_02.wav")
        before = first.nearest(query, 3)
        assert builds == [("tracks", 8)]
        assert (sidecar_dir(tiny_h5) / "tracks.usearch").is_file()
        again = Searcher(store, "tracks", config)
        assert builds == [("tracks", 8)]  # loaded, not rebuilt
        assert again.nearest(query, 3) == before
    library = tmp_path / "more"
    library.mkdir()
    write_audio(library / "new_tone.wav", tone(1234, 2, 99), TINY_RATE)
    extract(library, tiny_h5, tiny_tagger)  # the store changes: one more track
    with open_store(tiny_h5) as store:
        rebuilt = Searcher(store, "tracks", config)
        assert builds == [("tracks", 8), ("tracks", 9)]
        assert "new_tone.wav" in rebuilt.labels.relpaths


def test_index_follows_the_store_generation_not_only_its_attributes(tiny_h5: Path) -> None:
    require("usearch")
    builds: list[int] = []
    config = SearchConfig(index_threshold=0, on_build=lambda level, rows: builds.append(rows))
    with open_store(tiny_h5) as store:
        generation, query = store.generation, store.mean("tone_05.wav")
        Searcher(store, "tracks", config)
    reembed(tiny_h5, "tone_05.wav")  # same file, same attributes, new vectors
    with open_store(tiny_h5) as store:
        assert store.generation == generation + 1
        rebuilt = Searcher(store, "tracks", config)
        assert len(builds) == 2
        assert not np.allclose(store.mean("tone_05.wav"), query)
        assert rebuilt.nearest(store.mean("tone_05.wav"), 1)[0].relpath == "tone_05.wav"
    compact_store(tiny_h5)  # merging segments changes neither content nor generation
    with open_store(tiny_h5) as store:
        assert store.generation == generation + 1
        Searcher(store, "tracks", config)
        assert len(builds) == 2  # reused


def test_index_and_exact_agree_on_a_small_store(tiny_h5: Path) -> None:
    require("usearch")
    with open_store(tiny_h5) as store:
        for level in ("tracks", "windows"):
            exact = Searcher(store, level, SearchConfig(cache=False))
            approx = Searcher(store, level, FORCED)
            for tid in store.track_ids:
                found = approx.nearest(store.mean(tid), 5, tid)
                expected = exact.nearest(store.mean(tid), 5, tid)
                assert _keys(found) == _keys(expected)
                assert np.allclose([n.score for n in found], [n.score for n in expected], atol=2e-3)


def test_fingerprint_follows_content_not_location(
    tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path, tmp_path: Path
) -> None:
    copy = copy_store(tiny_h5, tmp_path / "elsewhere.h5")
    with open_store(tiny_h5) as store, open_store(copy) as moved:
        original = store_fingerprint(store)
        assert store_fingerprint(moved) == original
    extract(tiny_lib, tiny_h5, tiny_tagger)  # a rerun that embeds nothing
    with open_store(tiny_h5) as store:
        assert store_fingerprint(store) == original
    changed = tmp_path / "changed"
    changed.mkdir()
    write_audio(changed / "tone_00.wav", tone(999, 2, 7), TINY_RATE)
    extract(changed, tiny_h5, tiny_tagger)  # same relpath, new content
    with open_store(tiny_h5) as store:
        assert store_fingerprint(store) != original

"""similar(): real songs find their resampled twins; windows, new files, the model check."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import ConfigError, ModelArtifactError, StoreError
from clmr_embed.search import similar
from clmr_embed.store import open_store

TWINS = {
    "john_lennon_imagine.mp3": "john_lennon_imagine_22050.mp3",
    "queen_love_of_my_life.mp3": "queen_love_of_my_life_22050.mp3",
}


def test_each_song_s_nearest_track_is_its_resampled_copy(demo_h5: Path) -> None:
    with open_store(demo_h5) as store:
        for song, twin in {**TWINS, **{v: k for k, v in TWINS.items()}}.items():
            result = similar(store, song, top_k=5)
            assert result.source == "store" and result.backend == "exact"
            assert result.neighbours[0].relpath == twin
            assert result.neighbours[0].score > 0.9
            scores = [n.score for n in result.neighbours]
            assert scores == sorted(scores, reverse=True) and len(scores) == 5
            assert song not in [n.relpath for n in result.neighbours]


def test_window_results_carry_times_and_skip_the_query_track(demo_h5: Path) -> None:
    with open_store(demo_h5) as store:
        result = similar(store, "queen_love_of_my_life.mp3", top_k=20, windows=True)
        assert result.level == "windows"
        twin = store.attrs(TWINS["queen_love_of_my_life.mp3"])
        starts = store.starts_s(twin["relpath"])
        found = [n for n in result.neighbours if n.relpath == twin["relpath"]]
        assert len(found) >= 10  # the twin's windows dominate
        assert all(n.start_s is not None for n in result.neighbours)
        assert all(np.isclose(starts, n.start_s or 0.0, atol=1e-3).any() for n in found)
        assert all(n.relpath != "queen_love_of_my_life.mp3" for n in result.neighbours)
        record = result.neighbours[0].to_dict()
        assert set(record) == {"track_id", "relpath", "score", "start_s"}


def test_a_new_file_is_embedded_with_the_store_s_model(
    tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path, tmp_path: Path
) -> None:
    outside = shutil.copyfile(tiny_lib / "tone_03.wav", tmp_path / "new.wav")
    with open_store(tiny_h5) as store:
        result = similar(store, outside, top_k=3, model=tiny_tagger)
        assert result.source == "file"
        assert result.neighbours[0].relpath == "tone_03.wav"
        assert result.neighbours[0].score == pytest.approx(1.0, abs=1e-4)


def test_another_model_or_an_unregistered_name_is_refused(
    tiny_h5: Path, tiny_lib: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    new = shutil.copyfile(tiny_lib / "tone_03.wav", tmp_path / "new.wav")
    with open_store(tiny_h5) as store:
        with pytest.raises(ModelArtifactError, match="did not make store"):
            similar(store, new, model=tiny_encoder)  # same weights, another file
        with pytest.raises(ModelArtifactError, match="not a registered name"):
            similar(store, new)  # the store says "tiny", which no registry knows


def test_a_query_that_is_neither_stored_nor_a_file_fails_clearly(tiny_h5: Path) -> None:
    with open_store(tiny_h5) as store:
        with pytest.raises(StoreError, match="neither a track id or relative path"):
            similar(store, "missing.wav")
        with pytest.raises(ConfigError, match="top_k"):
            similar(store, "tone_01.wav", top_k=0)


def test_a_store_path_is_opened_and_gives_the_same_result(tiny_h5: Path) -> None:
    with open_store(tiny_h5) as store:
        expected = similar(store, "tone_03.wav", top_k=3, windows=True).to_dict()
    assert similar(tiny_h5, "tone_03.wav", top_k=3, windows=True).to_dict() == expected
    assert similar(str(tiny_h5), "tone_03.wav", top_k=3, windows=True).to_dict() == expected

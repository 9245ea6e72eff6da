"""Tests of clmr_embed.tagging.tag_files: one outcome per path; bad files fail, never stop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.embed import Embedder
from clmr_embed.errors import ModelArtifactError
from clmr_embed.tagging import tag_files
from tests.fixtures.audio import write_library, write_sine


def test_every_file_gets_an_outcome_and_a_bad_one_does_not_stop_the_rest(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    lib = write_library(tmp_path / "lib")
    (lib / "broken.mp3").write_bytes(b"\x00not audio" * 50)
    outcomes = list(tag_files(Embedder(tiny_tagger), [lib], top_k=2))
    tagged = [o for o in outcomes if o.result is not None]
    failed = [o for o in outcomes if o.failed]
    assert len(tagged) == 5 and all(len(o.result.tags) == 2 for o in tagged if o.result)
    assert [Path(o.path).name for o in failed] == ["broken.mp3"] and "broken.mp3" in failed[0].error
    assert len(outcomes) == 6  # notes.txt is not audio: no outcome at all


def test_a_broken_link_is_skipped_not_failed(tmp_path: Path, tiny_tagger: Path) -> None:
    (tmp_path / "lib").mkdir()
    write_sine(tmp_path / "lib" / "song.wav", 440, 1.0, 8000)
    (tmp_path / "lib" / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    link, song = tag_files(Embedder(tiny_tagger), [tmp_path / "lib"])
    assert link.skipped and "gone.wav" in link.path and not link.failed and link.result is None
    assert song.result is not None and not song.skipped and not song.failed


def test_segments_are_kept_only_when_asked(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 3.0, 8000)
    embedder = Embedder(tiny_tagger)
    (plain,) = tag_files(embedder, [song])
    (taggram,) = tag_files(embedder, [song], segments=True)
    assert plain.result is not None and plain.result.window_probs is None
    assert taggram.result is not None and taggram.result.window_probs is not None
    assert len(taggram.result.window_probs) == taggram.result.n_windows


def test_an_encoder_is_refused_before_any_file_is_read(tmp_path: Path, tiny_encoder: Path) -> None:
    with pytest.raises(ModelArtifactError, match="not a tagger"):
        next(tag_files(Embedder(tiny_encoder), [tmp_path / "missing.wav"]))

"""Audio files: only stored tracks, only under the roots, only with their recorded content."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.digest import file_sha256
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.roots import LibraryRoot
from clmr_embed.store import StoreHeader, TrackRecord, open_store, open_writer
from tests.clmr_embed.search.stores import TINY_RATE, extract, record_roots, require, tone
from tests.fixtures.audio import write_audio

require("starlette")
from starlette.exceptions import HTTPException
from starlette.testclient import TestClient

from clmr_embed.serve.media import AudioFiles, serving_roots

HEADER = StoreHeader(
    model_name="crafted",
    model_sha256="0" * 64,
    model_trained=False,
    sample_rate=TINY_RATE,
    window_samples=2187,
    hop_samples=2187,
    embedding_dim=4,
    preprocessing={},
)


def _status(files: AudioFiles, track_id: str) -> int:
    with pytest.raises(HTTPException) as refused:
        files.path(track_id)
    return refused.value.status_code


def _crafted(track_id: str, relpath: str, audio: Path) -> TrackRecord:
    """A track record naming `relpath` for the content of `audio` (a store an attacker wrote)."""
    return TrackRecord(
        track_id=track_id,
        relpath=relpath,
        content_sha256=file_sha256(audio),
        duration_s=1.0,
        source_rate=TINY_RATE,
        channels=1,
        embeddings=np.ones((1, 4), np.float32),
        starts_s=np.zeros(1, np.float32),
    )


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path, tiny_tagger: Path) -> None:
    library, outside = tmp_path / "lib", tmp_path / "outside"
    library.mkdir()
    outside.mkdir()
    write_audio(library / "inside.wav", tone(220, 1, 0), TINY_RATE)
    write_audio(outside / "secret.wav", tone(330, 1, 1), TINY_RATE)
    os.symlink(outside / "secret.wav", library / "link.wav")
    with open_store(extract(library, tmp_path / "s.h5", tiny_tagger)) as store:
        files = AudioFiles(store, serving_roots((library,), ()))
        ids = dict(zip(store.paths, store.track_ids, strict=True))
        assert files.path(ids["inside.wav"]) == (library / "inside.wav").resolve()
        assert _status(files, ids["link.wav"]) == 403


def test_crafted_relpaths_never_leave_the_root(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    target = write_audio(tmp_path / "outside.wav", tone(440, 1, 2), TINY_RATE)
    store_path = tmp_path / "crafted.h5"
    relpaths = {"up": "../outside.wav", "absolute": str(target), "deep": "a/../../outside.wav"}
    with open_writer(store_path, HEADER) as writer:
        for track_id, relpath in relpaths.items():
            writer.add_track(_crafted(track_id, relpath, target))
    with open_store(store_path) as store:
        files = AudioFiles(store, serving_roots((library,), ()))
        assert {tid: _status(files, tid) for tid in relpaths} == dict.fromkeys(relpaths, 403)


def test_unknown_missing_and_changed_files_are_not_found(
    tiny_h5: Path, tiny_lib: Path, tmp_path: Path
):
    copy = Path(shutil.copytree(tiny_lib, tmp_path / "lib"))
    with open_store(tiny_h5) as store:
        ids = dict(zip(store.paths, store.track_ids, strict=True))
        files = AudioFiles(store, serving_roots((tmp_path / "empty", copy), ()))
        assert files.path(ids["tone_01.wav"]) == (copy / "tone_01.wav").resolve()  # second root
        assert _status(files, "no-such-id") == 404
        (copy / "tone_02.wav").unlink()
        assert _status(files, ids["tone_02.wav"]) == 404
        write_audio(copy / "tone_03.wav", tone(100, 1, 5), TINY_RATE)  # same path, new content
        assert _status(files, ids["tone_03.wav"]) == 404


def test_recorded_roots_of_several_inputs_find_each_file_and_nothing_across(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    rock, jazz = tmp_path / "rock", tmp_path / "jazz"
    for folder, freq in ((rock, 220), (jazz, 330)):
        folder.mkdir()
        write_audio(folder / "same.wav", tone(freq, 1, freq), TINY_RATE)
    write_audio(jazz / "other.wav", tone(440, 1, 3), TINY_RATE)
    os.symlink(jazz / "other.wav", rock / "link.wav")  # into the other root: still out of rock
    store_path = tmp_path / "s.h5"
    model = str(tiny_tagger)
    config = ExtractConfig(inputs=(rock, jazz), output=store_path, model=model, workers=0)
    assert not run_extract(config).failed
    record_roots(store_path, rock, jazz)
    with open_store(store_path) as store:
        assert [r.prefix for r in store.roots] == ["rock/", "jazz/"]
        files = AudioFiles(store, serving_roots((), store.roots))
        ids = dict(zip(store.paths, store.track_ids, strict=True))
        assert files.path(ids["rock/same.wav"]) == (rock / "same.wav").resolve()
        assert files.path(ids["jazz/same.wav"]) == (jazz / "same.wav").resolve()
        assert _status(files, ids["rock/link.wav"]) == 403
        assert "jazz/other.wav" not in ids  # the scan listed that real file once, via the link
        given = AudioFiles(store, serving_roots((tmp_path,), store.roots))  # --root instead
        assert given.path(ids["jazz/same.wav"]) == (jazz / "same.wav").resolve()
        assert _status(AudioFiles(store, ()), ids["rock/same.wav"]) == 404


def test_a_crafted_relpath_cannot_climb_from_its_prefix_into_another_root(
    tmp_path: Path,
) -> None:
    rock, jazz = tmp_path / "rock", tmp_path / "jazz"
    rock.mkdir()
    jazz.mkdir()
    target = write_audio(jazz / "secret.wav", tone(440, 1, 2), TINY_RATE)
    store_path = tmp_path / "crafted.h5"
    with open_writer(store_path, HEADER) as writer:
        writer.record_roots([LibraryRoot(rock, "rock/")])
        writer.add_track(_crafted("climb", "rock/../jazz/secret.wav", target))
    with open_store(store_path) as store:
        assert _status(AudioFiles(store, serving_roots((), store.roots)), "climb") == 403


def test_paths_in_urls_reach_no_file(client: TestClient) -> None:
    for url in (
        "/audio/..%2F..%2F..%2Fetc%2Fpasswd",
        "/audio/%2Fetc%2Fpasswd",
        "/audio/tone_01.wav",  # a relpath is not an id
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2Fetc%2Fpasswd",
    ):
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert b"root:" not in response.content

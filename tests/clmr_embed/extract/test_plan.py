"""Scan to plan: new, changed, unchanged, duplicate (of the store or of this run) and missing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from clmr_embed.extract.plan import make_plan, track_id_for
from clmr_embed.scan import AudioFile, find_audio_files


class FakeStore:
    """The two store queries planning asks, over {track id: content sha256} (all embedded)."""

    def __init__(self, tracks: dict[str, str]) -> None:
        self.tracks = tracks

    def is_current(self, track_id: str, content_sha256: str) -> bool:
        return self.tracks.get(track_id) == content_sha256

    def find_content(self, content_sha256: str) -> str | None:
        ids = [tid for tid, content in self.tracks.items() if content == content_sha256]
        return min(ids) if ids else None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _library(root: Path, files: dict[str, bytes]) -> list[AudioFile]:
    for relpath, data in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
    return find_audio_files([root])


def test_track_ids_hash_the_posix_relpath() -> None:
    assert track_id_for("a/b.wav") == track_id_for("a/b.wav") != track_id_for("a/c.wav")
    assert len(track_id_for("x.wav")) == 20 and "/" not in track_id_for("a/b.wav")


def test_every_kind_of_file(tmp_path: Path) -> None:
    files = _library(
        tmp_path / "lib",
        {
            "new.wav": b"new",
            "same.wav": b"same",
            "edited.wav": b"edited now",
            "copy_of_stored.wav": b"same",
            "first.wav": b"twin",
            "second.wav": b"twin",
        },
    )
    stored = {
        track_id_for("same.wav"): _sha(b"same"),
        track_id_for("edited.wav"): _sha(b"edited before"),
        track_id_for("gone.wav"): _sha(b"gone"),
    }
    plan = make_plan(files, FakeStore(stored), set(stored))
    assert [t.file.relpath for t in plan.todo] == ["edited.wav", "first.wav", "new.wav"]
    assert [t.file.relpath for t in plan.unchanged] == ["same.wav"]
    assert [(t.file.relpath, target) for t, target in plan.aliases] == [
        ("copy_of_stored.wav", track_id_for("same.wav"))
    ]
    assert [(t.file.relpath, target) for t, target in plan.pending_aliases] == [
        ("second.wav", track_id_for("first.wav"))
    ]
    assert plan.missing == [track_id_for("gone.wav")] and plan.unreadable == []
    todo = {t.file.relpath: t for t in plan.todo}
    assert todo["new.wav"].content == _sha(b"new")
    assert todo["new.wav"].track_id == track_id_for("new.wav")


def test_the_same_relpath_from_two_inputs_is_skipped(tmp_path: Path) -> None:
    one = _library(tmp_path / "one", {"song.wav": b"a"})
    two = _library(tmp_path / "two", {"song.wav": b"b"})
    plan = make_plan(one + two, FakeStore({}), set())
    assert [t.file.path for t in plan.todo] == [one[0].path]
    ((key, reason),) = plan.unreadable
    # keyed by its full path: the relpath's key belongs to the embedded file, whose success
    # would clear the error
    assert key == str(two[0].path) != two[0].relpath
    assert "same relative path" in reason and str(two[0].path) in reason


def test_a_file_that_vanished_after_the_scan_is_unreadable(tmp_path: Path) -> None:
    files = _library(tmp_path / "lib", {"a.wav": b"a", "b.wav": b"b"})
    files[0].path.unlink()
    plan = make_plan(files, FakeStore({}), set())
    assert [t.file.relpath for t in plan.todo] == ["b.wav"]
    assert [key for key, _ in plan.unreadable] == ["a.wav"]
    assert "cannot read" in plan.unreadable[0][1]


def test_ids_of_utf8_names_are_unchanged_and_others_hash_their_bytes(tmp_path: Path) -> None:
    # stores made before names were hashed as bytes keep their ids
    assert track_id_for("Café/a.wav") == hashlib.sha1("Café/a.wav".encode()).hexdigest()[:20]
    assert track_id_for("Café/a.wav") == track_id_for("Café/a.wav".encode())
    root = tmp_path / "lib"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.wav")).write_bytes(b"latin-1 name")  # UnicodeEncodeError once
    plan = make_plan(find_audio_files([root]), FakeStore({}), set())
    (todo,) = plan.todo
    assert todo.track_id == track_id_for(b"caf\xe9.wav")
    assert todo.file.relpath == "caf\\xe9.wav"


def test_a_name_equal_to_anothers_escape_is_refused_not_merged(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.wav")).write_bytes(b"latin-1 name")
    (root / "caf\\xe9.wav").write_bytes(b"a name that is the other's escape, literally")
    plan = make_plan(find_audio_files([root]), FakeStore({}), set())
    assert [t.file.relpath for t in plan.todo] == ["caf\\xe9.wav"]
    ((key, reason),) = plan.unreadable  # same text key: the second would overwrite the first
    assert "same relative path" in reason and key == str(root / os.fsdecode(b"caf\xe9.wav")).encode(
        "utf-8", "surrogateescape"
    ).decode("utf-8", "backslashreplace")

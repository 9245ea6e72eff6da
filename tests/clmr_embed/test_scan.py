"""Tests of clmr_embed.scan: recursion, extensions, hidden names, globs, symlinks, duplicates."""

import os
from pathlib import Path

import pytest

from clmr_embed.errors import DataError
from clmr_embed.scan import AUDIO_EXTENSIONS, AudioFile, find_audio_files


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")  # scan never decodes, so content does not matter


def relpaths(files: list[AudioFile]) -> list[str]:
    return [f.relpath for f in files]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    touch(
        root,
        "b/song.MP3",
        "a/track.flac",
        "a/deep/x.Wav",
        "a/deep/y.opus",
        "top.m4a",
        "notes.txt",
        "cover.jpg",
        ".hidden.mp3",
        ".cache/inside.mp3",
        "a/noext",
    )
    return root


def test_recursive_sorted_case_insensitive_and_non_audio_ignored(library: Path):
    files = find_audio_files([library])
    expected = ["a/deep/x.Wav", "a/deep/y.opus", "a/track.flac", "b/song.MP3", "top.m4a"]
    assert relpaths(files) == expected
    first = files[0]
    assert first.root == library.resolve()
    assert first.path == (library / "a/deep/x.Wav").resolve() and first.path.is_absolute()


def test_extension_list_is_lowercase_and_complete():
    assert {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".wma", ".mka"} <= set(
        AUDIO_EXTENSIONS
    )
    assert all(ext == ext.lower() and ext.startswith(".") for ext in AUDIO_EXTENSIONS)


def test_file_given_directly_uses_its_name(library: Path):
    files = find_audio_files([library / "a" / "track.flac"])
    assert files == [
        AudioFile(
            path=(library / "a/track.flac").resolve(),
            root=(library / "a").resolve(),
            relpath="track.flac",
        )
    ]


def test_include_and_exclude_globs(library: Path):
    assert relpaths(find_audio_files([library], include=["*.flac", "b/*"])) == [
        "a/track.flac",
        "b/song.MP3",
    ]
    assert relpaths(find_audio_files([library], exclude=["a/deep/*", "*.m4a"])) == [
        "a/track.flac",
        "b/song.MP3",
    ]
    # Globs match the name too, and ignore case.
    assert relpaths(find_audio_files([library], include=["X.WAV"])) == ["a/deep/x.Wav"]


def test_missing_input_raises_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="nowhere"):
        find_audio_files([tmp_path / "nowhere"])


def test_symlink_loop_terminates_and_lists_each_file_once(tmp_path: Path):
    root = tmp_path / "lib"
    touch(root, "a/one.wav", "a/b/two.wav")
    os.symlink(root, root / "a" / "b" / "loop")  # points back at the top
    os.symlink(root / "a", root / "alias")  # a second route to the same real folder
    files = find_audio_files([root])
    assert sorted(f.path.name for f in files) == ["one.wav", "two.wav"]


def test_symlinked_file_followed_and_deduplicated(tmp_path: Path):
    real = tmp_path / "store"
    touch(real, "real.flac")
    lib = tmp_path / "lib"
    lib.mkdir()
    os.symlink(real / "real.flac", lib / "link.flac")
    os.symlink(tmp_path / "missing.flac", lib / "broken.flac")
    files = find_audio_files([lib, real])
    assert relpaths(files) == ["lib/link.flac"]  # the second route to the same file is dropped
    assert files[0].path == (real / "real.flac").resolve()


def test_inputs_keep_their_order_and_overlaps_are_listed_once(library: Path):
    files = find_audio_files([library / "b", library])
    assert relpaths(files)[0] == "b/song.MP3"  # several inputs: relpaths start with the folder
    assert [f.path.name for f in files].count("song.MP3") == 1
    assert len(files) == 5

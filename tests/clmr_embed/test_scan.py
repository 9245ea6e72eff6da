"""Tests of clmr_embed.scan: recursion, extensions, hidden names, globs, symlinks, duplicates."""

import os
from pathlib import Path

import pytest

from clmr_embed.errors import DataError
from clmr_embed.roots import LibraryRoot
from clmr_embed.scan import AUDIO_EXTENSIONS, AudioFile, find_audio_files, scan_inputs
from tests.fixtures.scandir import lock_folder


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


# --- hostile libraries (issue 13): every path passed over is reported, nothing hangs ---


def test_a_name_that_is_not_utf8_keeps_its_bytes_and_an_escaped_relpath(tmp_path: Path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.wav")).write_bytes(b"x")
    (root / "plain.wav").write_bytes(b"x")
    files = scan_inputs([root]).files
    odd = next(f for f in files if f.relpath != "plain.wav")
    assert odd.relpath == "caf\\xe9.wav" and odd.relpath_bytes == b"caf\xe9.wav"
    assert odd.path.is_file()  # the real path still opens
    plain = next(f for f in files if f.relpath == "plain.wav")
    assert plain.relpath_bytes == b"plain.wav"


def test_several_inputs_prefix_relpaths_with_the_folder_name(tmp_path: Path):
    touch(tmp_path / "rock", "good.wav", "sub/x.wav")
    touch(tmp_path / "jazz", "good.wav")
    (tmp_path / "single.wav").write_bytes(b"x")
    files = find_audio_files([tmp_path / "rock", tmp_path / "jazz", tmp_path / "single.wav"])
    assert relpaths(files) == ["rock/good.wav", "rock/sub/x.wav", "jazz/good.wav", "single.wav"]
    assert relpaths(find_audio_files([tmp_path / "rock"])) == ["good.wav", "sub/x.wav"]


def test_each_input_records_the_root_its_relpaths_are_found_under(tmp_path: Path):
    touch(tmp_path / "rock", "good.wav", "sub/x.wav")
    touch(tmp_path / "jazz", "good.wav")
    (tmp_path / "single.wav").write_bytes(b"x")
    os.symlink(tmp_path / "jazz", tmp_path / "linked")
    scan = scan_inputs([tmp_path / "rock", tmp_path / "linked", tmp_path / "single.wav"])
    real = tmp_path.resolve()
    assert scan.roots == [
        LibraryRoot(real / "rock", "rock/"),
        LibraryRoot(real / "jazz", "jazz/"),  # the link's target, named as it is
        LibraryRoot(real, ""),  # a file given directly: its folder
    ]
    for file in scan.files:  # every file is found again from its relpath and one root
        found = [r.candidate(file.relpath) for r in scan.roots]
        assert file.path in [p.resolve() for p in found if p is not None and p.exists()]
    assert scan_inputs([tmp_path / "rock"]).roots == [LibraryRoot(real / "rock", "")]


def test_an_unreadable_folder_is_reported_as_lost(tmp_path: Path, monkeypatch):
    touch(tmp_path / "lib", "ok.wav", "locked/hidden_from_us.wav")
    lock_folder(monkeypatch, tmp_path / "lib" / "locked")
    scan = scan_inputs([tmp_path / "lib"])
    assert relpaths(scan.files) == ["ok.wav"]
    (skipped,) = scan.skipped
    assert skipped.relpath == "locked" and skipped.lost
    assert "cannot list folder" in skipped.reason and "Permission denied" in skipped.reason


def test_broken_links_and_link_loops_are_reported_not_silent(tmp_path: Path):
    root = tmp_path / "lib"
    touch(root, "a/one.wav")
    os.symlink(tmp_path / "gone.flac", root / "broken.flac")
    os.symlink(root, root / "a" / "loop")  # a folder link back to the top
    os.symlink(root / "self.wav", root / "self.wav")  # a link to itself (ELOOP)
    scan = scan_inputs([root])
    assert relpaths(scan.files) == ["a/one.wav"]
    reasons = {s.relpath: s.reason for s in scan.skipped}
    assert set(reasons) == {"broken.flac", "a/loop", "self.wav"}
    assert "broken symlink" in reasons["broken.flac"] and "gone.flac" in reasons["broken.flac"]
    assert "symlink loop" in reasons["a/loop"] and "symlink loop" in reasons["self.wav"]
    assert not any(s.lost for s in scan.skipped)  # nothing there to embed


def test_fifos_and_devices_are_never_inputs(tmp_path: Path):
    root = tmp_path / "lib"
    touch(root, "ok.wav")
    os.mkfifo(root / "pipe.wav")  # opening it to hash would block forever
    os.mkfifo(tmp_path / "given.fifo")
    scan = scan_inputs([root, tmp_path / "given.fifo", Path("/dev/zero")])
    assert relpaths(scan.files) == ["lib/ok.wav"]
    kinds = {s.relpath: (s.lost, s.reason) for s in scan.skipped}
    assert kinds["lib/pipe.wav"][0] is False and "a FIFO" in kinds["lib/pipe.wav"][1]
    assert kinds["given.fifo"][0] is True and "a FIFO" in kinds["given.fifo"][1]
    assert kinds["zero"][0] is True and "a character device" in kinds["zero"][1]


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path: Path):
    folder = tmp_path / "lib"
    folder.mkdir()
    deep = str(folder)
    try:
        for _ in range(1050):  # os.walk (recursive in 3.11) raises RecursionError here
            deep += "/d"
            os.mkdir(deep)
        Path(deep, "bottom.wav").write_bytes(b"x")
        (file,) = find_audio_files([folder])
        assert file.relpath == "d/" * 1050 + "bottom.wav"
    finally:  # bottom-up by hand: shutil.rmtree (pytest's tmp cleanup) recurses too
        Path(deep, "bottom.wav").unlink(missing_ok=True)
        while deep != str(folder):
            os.rmdir(deep)
            deep = os.path.dirname(deep)

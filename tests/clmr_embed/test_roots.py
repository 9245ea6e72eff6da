"""Tests of clmr_embed.roots: a relpath's file under its root, never outside it; merging."""

from pathlib import Path

from clmr_embed.roots import MAX_ROOTS, LibraryRoot, merge_roots


def test_a_relpath_is_found_under_the_root_of_its_prefix() -> None:
    plain, prefixed = LibraryRoot(Path("/music")), LibraryRoot(Path("/data/rock"), "rock/")
    assert plain.candidate("a/b.mp3") == Path("/music/a/b.mp3")
    assert prefixed.candidate("rock/a/b.mp3") == Path("/data/rock/a/b.mp3")
    assert prefixed.candidate("jazz/a.mp3") is None  # another input's track
    assert prefixed.candidate("rock/") is None


def test_absolute_and_climbing_relpaths_have_no_candidate() -> None:
    root = LibraryRoot(Path("/music"))
    for relpath in ("/etc/passwd", "../secret.mp3", "a/../../secret.mp3", "a/.."):
        assert root.candidate(relpath) is None, relpath
    assert LibraryRoot(Path("/data/rock"), "rock/").candidate("rock/../jazz/a.mp3") is None


def test_roots_round_trip_and_merge_newest_first() -> None:
    a, b, c = (LibraryRoot(Path(f"/{n}"), f"{n}/") for n in "abc")
    assert LibraryRoot.from_dict(a.to_dict()) == a
    assert merge_roots([c, a], [a, b]) == (c, a, b)
    many = [LibraryRoot(Path(f"/r{i}")) for i in range(MAX_ROOTS + 5)]
    assert merge_roots(many[:1], many[1:]) == tuple(many[:MAX_ROOTS])

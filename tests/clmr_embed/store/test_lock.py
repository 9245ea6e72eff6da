"""Tests of clmr_embed.store.lock: one writer at a time, in this process or another."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.errors import StoreError
from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import HEADER, record, run_child


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER):
        with pytest.raises(StoreError, match="another clmr-embed extract") as info:
            open_writer(out, HEADER)
        assert str(out) in str(info.value)
        child = run_child(f"open_writer(Path({str(out)!r}), HEADER)")
        assert child.returncode != 0 and "another clmr-embed extract" in child.stderr
        with open_store(out) as store:  # readers need no lock
            assert len(store) == 0
    open_writer(out, HEADER).close()  # released on exit


def test_a_link_and_its_target_are_one_store(tmp_path: Path) -> None:
    real = tmp_path / "data" / "real.h5"
    real.parent.mkdir()
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    with open_writer(link, HEADER) as writer:
        with pytest.raises(StoreError, match="another clmr-embed extract"):
            open_writer(real, HEADER)  # one lock: on the real path
        writer.add_track(record("a"))
    with open_writer(real, HEADER) as writer:
        with pytest.raises(StoreError, match="another clmr-embed extract"):
            open_writer(link, HEADER)
        writer.add_track(record("b"))
    assert link.is_symlink() and link.resolve() == real  # commits replaced the target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.h5"]
    with open_store(link) as store:
        assert store.track_ids == ["a", "b"]

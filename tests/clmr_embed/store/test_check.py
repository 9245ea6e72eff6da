"""Tests of clmr_embed.store.check: the report of every track's checksums, and compact_store."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.errors import StoreError
from clmr_embed.store import DamagedTrack, check_store, compact_store, open_writer
from tests.fixtures.store import HEADER, assert_tidy, damage_track, record


def test_check_lists_damaged_tracks_and_compact_keeps_them_damaged(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        for tid in ("a", "b"):
            writer.add_track(record(tid))
            writer.commit()
        writer.add_alias("c", "c.wav", "c-b-0", "b")
    report = check_store(out)
    assert report.exit_code == 0 and report.damaged == ()
    assert (report.schema, report.generation, report.segments, report.tracks) == (2, 3, 3, 3)
    damage_track(out, "b")
    report = check_store(out)
    assert report.exit_code == 1
    assert [(t.track_id, t.relpath) for t in report.damaged] == [
        ("b", "music/b.wav"),
        ("c", "c.wav"),
    ]
    assert isinstance(report.damaged[0], DamagedTrack) and "checksum" in report.damaged[0].reason
    as_json = report.to_dict()
    assert as_json["damaged"][0] == {"track_id": "b", "relpath": "music/b.wav",
                                     "reason": report.damaged[0].reason}  # fmt: skip
    done = compact_store(out)
    assert (done.segments_before, done.segments_after) == (3, 1) and done.bytes_written > 0
    assert [t.track_id for t in check_store(out).damaged] == ["b", "c"]  # still said, not hidden
    assert_tidy(out)


def test_check_of_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        check_store(tmp_path / "nope.h5")

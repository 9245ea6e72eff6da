"""Tests of clmr_embed.store.published: when segments merge, and that merging changes nothing."""

from __future__ import annotations

import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.store import open_store, open_writer, published
from clmr_embed.store.published import FANOUT, SEGMENT_BYTES, tail_run
from clmr_embed.store.segment import SegmentInfo
from tests.fixtures.store import HEADER, assert_tidy, record, run_child


def _infos(*levels: int, size: int = 1000) -> list[SegmentInfo]:
    return [SegmentInfo(f"seg-{i:08d}.h5", level, 1, size, "") for i, level in enumerate(levels)]


def test_tail_run_merges_fanout_segments_of_one_level() -> None:
    assert tail_run(_infos(*[0] * (FANOUT - 1))) == FANOUT - 1  # not yet
    assert tail_run(_infos(*[0] * FANOUT)) == 0
    assert tail_run(_infos(2, 1, *[0] * FANOUT)) == 2  # only the newest run of one level
    assert tail_run(_infos(1, *[1] * (FANOUT - 1), 0)) == FANOUT + 1  # its level differs
    assert tail_run([]) == 0
    full = _infos(*[0] * FANOUT, size=SEGMENT_BYTES // 2)
    assert tail_run(full) == len(full)  # full segments are left alone


def _content(out: Path) -> tuple[dict, dict, dict]:
    with open_store(out) as store:
        attrs = {tid: store.attrs(tid) for tid in store.track_ids}
        arrays = {tid: store.embeddings(tid) for tid in store.track_ids}
        return attrs, arrays, store.errors


def test_many_commits_stay_few_segments_and_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(published, "FANOUT", 3)  # merges of three levels in 30 commits
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        for i in range(30):  # one commit per track: 30 segments without merges
            writer.add_track(record(f"t{i:02d}", n=1 + i % 3))
            if i % 5 == 3:
                writer.remove(f"t{i - 3:02d}")  # removals in old segments must stay removed
                writer.add_error(f"bad{i}.wav", "broken")
                writer.clear_error(f"bad{i - 5}.wav")
            writer.commit()
            assert writer.segments <= 2 * 3
        assert writer.generation == 30  # one per commit (0: the empty store)
    attrs, arrays, errors = _content(out)
    gone = {f"t{i - 3:02d}" for i in range(30) if i % 5 == 3}
    assert set(attrs) == {f"t{i:02d}" for i in range(30)} - gone
    for tid, emb in arrays.items():
        np.testing.assert_array_equal(emb, record(tid, n=1 + int(tid[1:]) % 3).embeddings)
    assert errors == {"bad28.wav": "broken"}
    with open_store(out) as store:
        assert max(info.level for info in store.segments) == 3
    assert_tidy(out)


def test_compact_merges_everything_into_one_segment(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        for i in range(5):
            writer.add_track(record(f"t{i}"))
            writer.commit()
        writer.add_alias("dup", "dup.wav", "c-t0-0", "t0")
        writer.remove("t1")
        writer.commit()
        before = _content(out)
        generation = writer.generation
        assert writer.segments == 6 and writer.compact() > 0
        assert writer.segments == 1 and writer.generation == generation  # content unchanged
    assert _content(out)[0] == before[0] and _content(out)[2] == before[2]
    for tid, emb in before[1].items():
        np.testing.assert_array_equal(_content(out)[1][tid], emb)
    assert_tidy(out)


def test_commit_bytes_do_not_grow_with_the_store(tmp_path: Path) -> None:
    written = []
    for size in (5, 100):
        out = tmp_path / f"s{size}.h5"
        with open_writer(out, HEADER) as writer:
            for i in range(size):
                writer.add_track(record(f"base{i:04d}"))
            writer.commit()
            for i in range(5):
                writer.add_track(record(f"new{i}"))
            writer.commit()
            written.append(writer.last_commit_bytes)
        assert out.stat().st_size < 20_000  # the manifest stays small
    assert written[1] < 1.2 * written[0], written  # 20x the store, the same commit cost


@pytest.mark.slow
def test_kill_during_a_merge_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    child = run_child(
        "from clmr_embed.store import published\n"
        "real = published.merge\n"
        "def dying(*a, **k):\n"
        "    real(*a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "published.merge = dying\n"
        f"w = open_writer(Path({str(out)!r}), HEADER)\n"
        "for i in range(100):\n"
        "    w.add_track(record(f't{i:02d}'))\n"
        "    w.commit()\n"
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_store(out) as store:  # the commit before the merge is published
            assert store.track_ids == [f"t{i:02d}" for i in range(FANOUT)]
            assert len(store.segments) == FANOUT
    with open_writer(out, HEADER) as writer:
        assert set(writer.tracks) == {f"t{i:02d}" for i in range(FANOUT)}
    assert_tidy(out)  # the merge's orphaned segments are gone
    with open_store(out) as store:
        for tid in store.track_ids:
            np.testing.assert_array_equal(store.embeddings(tid), record(tid).embeddings)

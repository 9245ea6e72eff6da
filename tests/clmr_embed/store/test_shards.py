"""merge_stores: shards of one model join into one store, nothing lost or twice, provenance kept."""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import StoreError
from clmr_embed.pooling import track_mean
from clmr_embed.roots import LibraryRoot
from clmr_embed.store import check_store, merge_stores, open_store, open_writer
from tests.fixtures.store import CHILD_PRELUDE, HEADER, ROOT, big, damage_track, record


def shard(path: Path, tracks: list, errors: dict | None = None, header=HEADER) -> Path:
    """A committed store of these TrackRecords (and failed files), its root under /music."""
    with open_writer(path, header) as writer:
        for track in tracks:
            writer.add_track(track)
        for relpath, reason in (errors or {}).items():
            writer.add_error(relpath, reason)
        writer.record_roots([LibraryRoot(Path(f"/music/{path.stem}"))])
    return path


def contents(path: Path) -> dict[str, tuple[str, str, np.ndarray]]:
    """Every track of a store: id -> (relpath, alias_of, embeddings)."""
    with open_store(path) as store:
        return {
            tid: (a["relpath"], a["alias_of"], store.embeddings(tid))
            for tid in store.track_ids
            for a in [store.attrs(tid)]
        }


def test_two_shards_merge_into_one_store_with_their_provenance(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1"), record("t2")], {"music/bad.wav": "corrupt"})
    b = shard(tmp_path / "b.h5", [record("t3", n=5)])
    out = tmp_path / "out.h5"
    report = merge_stores([a, b], out)
    assert (report.merged, report.aliased, report.unchanged, report.failed) == (3, 0, 0, 1)
    assert report.exit_code == 0 and report.copied_segments == 2  # disjoint: copied whole
    merged = contents(out)
    assert sorted(merged) == ["t1", "t2", "t3"]
    for tid, n in (("t1", 3), ("t2", 3), ("t3", 5)):
        np.testing.assert_array_equal(merged[tid][2], record(tid, n=n).embeddings)
    with open_store(out) as store:
        assert store.errors == {"music/bad.wav": "corrupt"}
        assert [s["path"] for s in store.shards] == [str(a), str(b)]
        assert [s["tracks"] for s in store.shards] == [2, 1]
        assert {r.folder.name for r in store.roots} == {"a", "b"}
        np.testing.assert_array_equal(store.mean("t3"), track_mean(record("t3", n=5).embeddings))
    assert not check_store(out).damaged


def test_equal_content_becomes_an_alias_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1", content="same"), record("t2")])
    b = shard(tmp_path / "b.h5", [record("t9", content="same"), record("t2")])
    out = tmp_path / "out.h5"
    report = merge_stores([a, b], out)
    assert (report.merged, report.aliased, report.unchanged) == (2, 1, 1)
    assert report.copied_segments == 1  # b shares a content and a track with a: read per track
    merged = contents(out)
    assert merged["t9"][1] == "t1"  # no second copy of the same audio's embeddings
    np.testing.assert_array_equal(merged["t9"][2], merged["t1"][2])
    with open_store(out) as store:
        before = store.generation

    again = merge_stores([a, b], out)
    assert (again.merged, again.aliased, again.unchanged) == (0, 0, 4)
    with open_store(out) as store:
        assert len(store.shards) == 2  # each shard listed once, however often it was merged
        generation = store.generation
    assert contents(out).keys() == merged.keys()
    assert generation == before  # nothing changed, nothing published


def test_a_later_shard_replaces_a_track_of_the_same_path(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1", seed=1)])
    b = shard(tmp_path / "b.h5", [record("t1", seed=2)])
    report = merge_stores([a, b], tmp_path / "out.h5")
    assert (report.merged, report.replaced) == (2, 1)
    np.testing.assert_array_equal(
        contents(tmp_path / "out.h5")["t1"][2], record("t1", seed=2).embeddings
    )


def test_a_path_one_shard_failed_and_another_embedded_is_not_a_failure(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1")], {"music/t2.wav": "corrupt"})
    b = shard(tmp_path / "b.h5", [record("t2")])
    c = shard(tmp_path / "c.h5", [], {"music/t1.wav": "unreadable"})
    report = merge_stores([a, b, c], tmp_path / "out.h5")
    assert report.failed == 0
    with open_store(tmp_path / "out.h5") as store:
        assert store.errors == {} and len(store) == 2


def test_stores_of_another_model_are_refused_before_any_work(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1")])
    other = dataclasses.replace(HEADER, model_sha256="b" * 64)
    b = shard(tmp_path / "b.h5", [record("t2")], header=other)
    out = tmp_path / "out.h5"
    with pytest.raises(StoreError, match=r"shard .*b\.h5 was made with model tiny \(sha256 bbbb"):
        merge_stores([a, b], out)
    assert not out.exists()
    hop = shard(
        tmp_path / "hop.h5", [record("t3")], header=dataclasses.replace(HEADER, hop_samples=1)
    )
    with pytest.raises(StoreError, match="hop 1"):
        merge_stores([a, hop], out)
    merge_stores([b], out)
    with pytest.raises(StoreError, match="the output store .*out.h5 was made with"):
        merge_stores([a], out)  # an existing output of another model too


def test_the_output_cannot_be_a_shard(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1")])
    with pytest.raises(StoreError, match="a.h5 is one of the shards"):
        merge_stores([a, tmp_path / "b.h5"], a)
    with pytest.raises(StoreError, match="does not exist"):
        merge_stores([tmp_path / "missing.h5"], tmp_path / "out.h5")


def test_a_damaged_shard_track_is_recorded_as_failed_and_the_rest_merged(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.h5", [record("t1"), record("t2")])
    damage_track(a, "t1")
    out = tmp_path / "out.h5"
    report = merge_stores([a], out)
    assert report.merged == 1 and report.exit_code == 1
    assert report.copied_segments == 0  # the damaged segment fails its sha256: read per track
    assert [p for p, _ in report.damaged] == ["music/t1.wav"]
    with open_store(out) as store:
        assert store.track_ids == ["t2"]
        assert "damaged in shard" in store.errors["music/t1.wav"]  # extract retries the file


MERGE_CHILD = """
from clmr_embed.store import merge_stores
class Events:
    def start(self, total): pass
    def advance(self, relpath, duration_s): print("done", relpath, flush=True)
merge_stores([Path(p) for p in SHARDS], Path(OUT), progress=Events())
"""


@pytest.mark.slow
def test_sigkill_mid_merge_then_rerun_completes_with_nothing_twice(tmp_path: Path) -> None:
    n = 40
    header = dataclasses.replace(HEADER, embedding_dim=512)
    tracks = [record(f"t{i:02d}", n=60, embeddings=big(i)) for i in range(n)]
    shards = [
        shard(tmp_path / "a.h5", tracks[: n // 2], header=header),
        shard(tmp_path / "b.h5", tracks[n // 2 :], header=header),
    ]
    reference, out = tmp_path / "reference.h5", tmp_path / "out.h5"
    merge_stores(shards, reference)
    code = CHILD_PRELUDE + f"SHARDS = {[str(s) for s in shards]!r}\nOUT = {str(out)!r}\n"
    rng, done, kills = random.Random(11), set(), 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", code + MERGE_CHILD], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        wanted = rng.randint(2, 8)  # kill once this many more tracks were journaled
        for line in proc.stdout:
            wanted -= line.split()[1] not in done  # reruns report the unchanged ones first
            done.add(line.split()[1])
            if wanted == 0:
                break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if proc.returncode == 0:  # it finished before the signal: nothing left to kill
            break
        assert proc.returncode == -signal.SIGKILL
        kills += 1
    assert kills >= 1
    report = merge_stores(shards, out)
    assert report.unchanged >= len(done) and report.merged + report.unchanged == n
    want, got = contents(reference), contents(out)
    assert got.keys() == want.keys()
    for tid, (relpath, _, embeddings) in want.items():
        assert got[tid][0] == relpath
        np.testing.assert_array_equal(got[tid][2], embeddings)
    assert not check_store(out).damaged
    with open_store(out) as store:
        assert len(store.shards) == 2

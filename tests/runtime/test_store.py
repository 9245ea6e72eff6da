"""The HDF5 store: round trip, header refusal, lock, journal recovery, kills during commit."""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import StoreError
from clmr_embed.store import (
    SCHEMA_VERSION,
    StoreHeader,
    TrackRecord,
    open_store,
    open_writer,
)

ROOT = Path(__file__).resolve().parents[2]
DIM = 8
HEADER = StoreHeader(
    model_name="tiny",
    model_sha256="a" * 64,
    model_trained=False,
    sample_rate=22050,
    window_samples=59049,
    hop_samples=59049,
    embedding_dim=DIM,
    preprocessing={"decoder": "pyav 14.0", "resampler": "soxr 0.5 HQ", "downmix": "mean"},
)


def record(tid: str, seed: int = 0, n: int = 3, content: str = "", **kw: object) -> TrackRecord:
    """A deterministic track: embeddings depend on (tid, seed) only."""
    rng = np.random.default_rng([seed, *tid.encode()])
    fields = {
        "track_id": tid,
        "relpath": f"music/{tid}.wav",
        "content_sha256": content or f"c-{tid}-{seed}",
        "duration_s": 2.5 * n,
        "source_rate": 44100,
        "channels": 2,
        "embeddings": rng.standard_normal((n, DIM)).astype(np.float32),
        "starts_s": (np.arange(n) * 2.678).astype(np.float32),
    }
    return TrackRecord(**{**fields, **kw})  # type: ignore[arg-type]


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run Python code in a fresh process (the way a killed extract would be)."""
    prelude = (
        "import contextlib, os\nfrom clmr_embed.store import writer as store\n"
        "from tests.runtime.test_store import *\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    a, b = record("a", n=4, flags=("silent",)), record("b", n=1, flags=("short",))
    with open_writer(out, HEADER) as writer:
        assert out.exists()  # the empty store is written at once
        writer.add_track(a)
        writer.add_track(b)
        assert writer.pending == 2
        writer.commit()
        assert writer.pending == 0 and writer.last_commit_s > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "out.h5.lock"]  # tidy
    with open_store(out) as store:
        assert store.header == HEADER
        assert len(store) == 2 and "a" in store and "music/b.wav" in store and "zz" not in store
        assert store.paths == ["music/a.wav", "music/b.wav"] and store.track_ids == ["a", "b"]
        np.testing.assert_array_equal(store.embeddings("a"), a.embeddings)
        np.testing.assert_array_equal(store.starts_s("music/a.wav"), a.starts_s)
        np.testing.assert_allclose(store.mean(Path("music/a.wav")), a.embeddings.mean(0), atol=1e-6)
        assert store.embeddings("b").dtype == np.float32 and store.embeddings("b").shape == (1, 8)
        assert store.flags("a") == ("silent",) and store.flags("b") == ("short",)
        attrs = store.attrs("a")
        assert attrs["n_windows"] == 4 and attrs["source_rate"] == 44100
        assert attrs["channels"] == 2 and attrs["duration_s"] == pytest.approx(10.0)
        assert attrs["content_sha256"] == "c-a-0" and attrs["alias_of"] == ""
        paths, means = store.means()
        assert paths == ["music/a.wav", "music/b.wav"] and means.shape == (2, DIM)
        np.testing.assert_allclose(means[1], b.embeddings[0])
        with pytest.raises(StoreError, match="nope.wav"):
            store.embeddings("nope.wav")


def test_layout_and_catalog(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", flags=("short",)))
        writer.add_alias("b", "b.wav", "c-a-0", "a")
        writer.add_error("bad.wav", "broken")
    with open_store(out) as store:
        fast = {tid: store.attrs(tid) for tid in store.track_ids}, store.errors
    with h5py.File(out, "r+") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f.attrs["model_sha256"] == HEADER.model_sha256 and f.attrs["hop_samples"] == 59049
        for key in ("created", "updated", "clmr_embed_version", "preprocessing", "model_trained"):
            assert key in f.attrs
        assert f["tracks/a/embeddings"].shape == (3, DIM) and f["tracks/a/mean"].shape == (DIM,)
        assert f["tracks/a"].attrs["flags"] == '["short"]' and len(f["tracks/b"]) == 0
        assert len(f["errors"]) == 1
        del f["catalog"]  # the per-group attributes alone are enough to read a store
    with open_store(out) as store:  # and they agree with the catalog
        assert ({tid: store.attrs(tid) for tid in store.track_ids}, store.errors) == fast


@pytest.mark.parametrize(
    "change", [{"model_sha256": "b" * 64, "model_name": "other"}, {"hop_samples": 22050}]
)
def test_other_model_or_hop_is_refused(tmp_path: Path, change: dict) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
    other = dataclasses.replace(HEADER, **change)
    with pytest.raises(StoreError) as info:
        open_writer(out, other)
    message = str(info.value)
    assert str(out) in message and "force option" in message and "--" not in message
    assert "hop 59049" in message and f"hop {other.hop_samples}" in message
    assert "sha256 aaaaaaaaaaaa" in message and f"sha256 {other.model_sha256[:12]}" in message
    with open_writer(out, HEADER) as writer:  # the refusal released the lock
        assert set(writer.tracks) == {"a"}


def test_force_starts_over_only_when_committed(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
    other = dataclasses.replace(HEADER, model_sha256="b" * 64)
    writer = open_writer(out, other, force=True)
    assert writer.tracks == {}
    writer.add_track(record("new"))
    with pytest.warns(UserWarning, match="1 tracks"), open_store(out) as store:
        assert store.track_ids == ["a"] and store.header == HEADER  # intact until the commit
    writer.close()
    with open_store(out) as store:
        assert store.track_ids == ["new"] and store.header == other


def test_force_run_killed_before_its_first_commit_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("old"))
    child = run_child(
        f"h = dataclasses.replace(HEADER, model_sha256='b' * 64)\n"
        f"w = open_writer(Path({str(out)!r}), h, force=True)\n"
        "w.add_track(record('new'))\nos._exit(0)\n"
    )
    assert child.returncode == 0, child.stderr
    other = dataclasses.replace(HEADER, model_sha256="b" * 64)
    with open_writer(out, other) as writer:  # no --force: continues the forced run
        assert set(writer.tracks) == {"new"}
    with open_store(out) as store:
        assert store.track_ids == ["new"] and store.header == other


def test_other_preprocessing_warns_but_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    open_writer(out, HEADER).close()
    other = dataclasses.replace(HEADER, preprocessing={"decoder": "soundfile 0.13"})
    with pytest.warns(UserWarning, match="soundfile 0.13"), open_writer(out, other) as writer:
        writer.add_track(record("a"))
    with open_store(out) as store:
        assert store.track_ids == ["a"]


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


def test_journal_recovery_after_kill(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    child = run_child(
        f"w = open_writer(Path({str(out)!r}), HEADER)\n"
        "for t in 'abc':\n    w.add_track(record(t))\n"
        "w.add_error('bad.mp3', 'not audio')\nos._exit(0)\n"
    )
    assert child.returncode == 0, child.stderr
    with pytest.warns(UserWarning, match="3 tracks .* not merged"), open_store(out) as store:
        assert len(store) == 0  # readers see committed tracks only
    with open_writer(out, HEADER) as writer:
        assert writer.pending == 0  # recovered and merged on open
        assert set(writer.tracks) == {"a", "b", "c"} and writer.errors == {"bad.mp3": "not audio"}
    with open_store(out) as store:
        assert store.track_ids == ["a", "b", "c"] and store.errors == {"bad.mp3": "not audio"}
        np.testing.assert_array_equal(store.embeddings("b"), record("b").embeddings)


@pytest.mark.parametrize("where", ["apply", "install", "delete"])
def test_kill_during_commit_loses_nothing(tmp_path: Path, where: str) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
        writer.add_track(record("b"))
    kill = "lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)"
    patch = {
        # dies inside the HDF5 write of the temp copy, after one entry was applied
        "apply": f"real = store._apply\nstore._apply = lambda *a: (real(*a), ({kill})())\n",
        # the copy is complete, not yet renamed
        "install": "real = store.atomic_path\n"
        "@contextlib.contextmanager\n"
        "def dying(path):\n"
        "    with real(path) as tmp:\n"
        "        yield tmp\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "store.atomic_path = dying\n",
        "delete": f"store.Journal.delete = {kill}\n",  # renamed, entries not yet deleted
    }[where]
    child = run_child(
        patch + f"w = open_writer(Path({str(out)!r}), HEADER)\n"
        "w.add_track(record('b', seed=1, n=5))\nw.add_track(record('c'))\n"
        "w.add_alias('d', 'music/d.wav', 'c-c-0', 'c')\nw.commit()\n"
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with pytest.warns(UserWarning, match="not merged"), open_store(out) as store:
        assert {"a", "b"} <= set(store.track_ids)  # the old or the new store, never broken
    with open_writer(out, HEADER) as writer:
        assert writer.pending == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "out.h5.lock"]  # no copies
    with open_store(out) as store:
        assert store.track_ids == ["a", "b", "c", "d"]
        np.testing.assert_array_equal(store.embeddings("b"), record("b", seed=1, n=5).embeddings)
        np.testing.assert_array_equal(store.embeddings("d"), record("c").embeddings)


def test_re_add_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", n=3))
    with open_writer(out, HEADER) as writer:
        assert writer.is_current("a", "c-a-0") and not writer.is_current("a", "c-a-1")
        writer.add_track(record("a", seed=1, n=5))
    with open_store(out) as store:
        assert len(store) == 1 and store.attrs("a")["n_windows"] == 5
        np.testing.assert_array_equal(store.embeddings("a"), record("a", seed=1, n=5).embeddings)


def test_alias_resolves_to_its_target(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", content="same"))
        assert writer.find_content("same") == "a" and writer.find_content("other") is None
        writer.add_alias("b", "copies/b.wav", "same", "a")
        assert writer.find_content("same") == "a"  # aliases are never targets
        assert writer.tracks["b"].alias_of == "a" and writer.is_current("b", "same")
        with pytest.raises(ValueError, match="target"):
            writer.add_alias("x", "x.wav", "different", "a")
    with open_store(out) as store:
        assert store.paths == ["copies/b.wav", "music/a.wav"] and len(store) == 2
        np.testing.assert_array_equal(store.embeddings("copies/b.wav"), store.embeddings("a"))
        np.testing.assert_array_equal(store.mean("b"), store.mean("a"))
        assert store.attrs("b")["alias_of"] == "a" and store.attrs("b")["relpath"] == "copies/b.wav"
        paths, means = store.means()
        np.testing.assert_array_equal(means[0], means[1])


def test_prune_removes_and_keeps_aliases_embedded(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    a = record("a", content="same")
    with open_writer(out, HEADER) as writer:
        writer.add_track(a)
        writer.add_track(record("z"))
        writer.add_alias("b", "b.wav", "same", "a")
        writer.add_alias("c", "c.wav", "same", "a")
    with open_writer(out, HEADER) as writer:
        writer.remove("z")
        writer.remove("a")  # b is promoted (keeps a's embeddings), c re-points to b
        assert writer.tracks["b"].alias_of == "" and writer.tracks["c"].alias_of == "b"
        assert writer.find_content("same") == "b"
    with open_store(out) as store:
        assert store.track_ids == ["b", "c"]
        np.testing.assert_array_equal(store.embeddings("b"), a.embeddings)
        np.testing.assert_array_equal(store.embeddings("c.wav"), a.embeddings)


def test_changed_content_detaches_aliases(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", content="old"))
        writer.add_alias("b", "b.wav", "old", "a")
        writer.add_track(record("a", seed=1, content="new"))  # a.wav was edited
        assert writer.tracks["b"].alias_of == "" and writer.is_current("b", "old")
    with open_store(out) as store:
        np.testing.assert_array_equal(store.embeddings("b"), record("a", content="old").embeddings)
        np.testing.assert_array_equal(store.embeddings("a"), record("a", seed=1).embeddings)


def test_errors_recorded_replaced_and_cleared(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_error("music/a.wav", "first")
        writer.add_error("music/a.wav", "second")
        writer.add_error("x/y.mp3", "truncated")
    with open_store(out) as store:
        assert store.errors == {"music/a.wav": "second", "x/y.mp3": "truncated"}
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))  # the file now succeeds: its error goes
        writer.clear_error("x/y.mp3")
        writer.clear_error("never/failed.wav")
    with open_store(out) as store:
        assert store.errors == {} and store.track_ids == ["a"]


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    with open_writer(tmp_path / "out.h5", HEADER) as writer:
        with pytest.raises(ValueError, match="track id"):
            writer.add_track(record("a/b"))
        with pytest.raises(ValueError, match=r"\(n_windows >= 1, 8\)"):
            writer.add_track(record("a", embeddings=np.zeros((3, 4), np.float32)))
        with pytest.raises(ValueError, match="n_windows"):
            writer.add_track(record("a", embeddings=np.zeros((0, DIM), np.float32)))
        assert writer.pending == 0


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with pytest.raises(StoreError, match="missing.h5 does not exist"):
        open_store(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(StoreError, match="junk.h5 is not a readable HDF5"):
        open_store(junk)
    with pytest.raises(StoreError, match="junk.h5"):
        open_writer(junk, HEADER)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(StoreError, match="foreign.h5 is an HDF5 file but not a clmr-embed store"):
        open_store(foreign)
    open_writer(foreign, HEADER, force=True).close()  # --force replaces it
    with open_store(foreign) as store:
        assert len(store) == 0


def test_random_sigkills_lose_no_finished_track(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    code = (
        "import sys\nh = dataclasses.replace(HEADER, embedding_dim=512)\n"
        f"w = open_writer(Path({str(out)!r}), h)\n"
        "for i in range(len(w.tracks), 10**6):\n"
        "    w.add_track(record(f't{i:05d}', n=60, embeddings=big(i)))\n"
        "    print(f't{i:05d}', flush=True)\n"
        "    if i % 4 == 3:\n        w.commit()\n"
    )
    rng = random.Random(5)
    done: set[str] = set()
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.runtime.test_store import *\n" + code],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.6, 1.6))
        proc.send_signal(signal.SIGKILL)
        done |= set(proc.communicate()[0].split())
        assert proc.returncode == -signal.SIGKILL
        with warnings.catch_warnings():  # tracks may be pending: a warning is fine
            warnings.simplefilter("ignore")
            open_store(out).close()  # opens after every kill
    assert len(done) > 8
    with open_writer(out, dataclasses.replace(HEADER, embedding_dim=512)) as writer:
        assert done <= set(writer.tracks)
    with open_store(out) as store:
        for tid in sorted(done)[:: max(1, len(done) // 5)]:
            np.testing.assert_array_equal(store.embeddings(tid), big(int(tid[1:])))


def big(i: int) -> np.ndarray:
    """A 60 x 512 float32 track (the size of a 2.7-minute song) for the kill test."""
    return np.random.default_rng(i).standard_normal((60, 512)).astype(np.float32)

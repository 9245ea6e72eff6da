"""Tests of clmr_embed.store.writer: header refusal, --force, commits, kills during commit."""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import StoreError
from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import (
    CHILD_PRELUDE,
    DIM,
    HEADER,
    ROOT,
    assert_tidy,
    big,
    record,
    run_child,
)


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


def test_other_preprocessing_warns_but_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    open_writer(out, HEADER).close()
    other = dataclasses.replace(HEADER, preprocessing={"decoder": "soundfile 0.13"})
    with pytest.warns(UserWarning, match="soundfile 0.13"), open_writer(out, other) as writer:
        writer.add_track(record("a"))
    with open_store(out) as store:
        assert store.track_ids == ["a"]


@pytest.mark.parametrize(
    ("made", "then"),
    [
        (("onnxruntime", "fp32"), ("openvino", "int8")),
        (("openvino", "int8"), ("onnxruntime", "fp32")),
        (("openvino", "int8"), ("onnxruntime", "int8")),  # other int8 kernels, other numbers
        (("openvino", "bf16"), ("openvino", "int8")),
    ],
)
def test_another_precision_is_refused_unless_force(
    tmp_path: Path, made: tuple[str, str], then: tuple[str, str]
) -> None:
    out = tmp_path / "out.h5"
    first = dataclasses.replace(HEADER, engine=made[0], precision=made[1])
    with open_writer(out, first) as writer:
        writer.add_track(record("a"))
    other = dataclasses.replace(HEADER, engine=then[0], precision=then[1])
    with pytest.raises(StoreError) as info:
        open_writer(out, other)
    message = str(info.value)
    assert "\n" not in message and "force option" in message
    assert f"precision {made[1]} on {made[0]}" in message
    assert f"precision {then[1]} on {then[0]}" in message
    with open_writer(out, other, force=True) as writer:
        writer.add_track(record("b"))
    with open_store(out) as store:
        assert store.header == other and store.track_ids == ["b"]


def test_another_fp32_engine_warns_but_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    open_writer(out, HEADER).close()  # onnxruntime fp32, as every store before engines
    openvino = dataclasses.replace(HEADER, engine="openvino")
    with pytest.warns(UserWarning, match="engine onnxruntime; this run uses openvino"):
        open_writer(out, openvino).close()
    assert HEADER.fingerprint().count(":") == 4  # fp32 stores keep their old fingerprint


def test_journaled_tracks_of_another_precision_are_not_merged(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    open_writer(out, HEADER).close()
    int8 = dataclasses.replace(HEADER, engine="onnxruntime", precision="int8")
    writer = open_writer(out, int8, force=True)
    writer.add_track(record("late"))  # journaled, never committed (a killed run)
    writer._lock.release()
    with pytest.warns(UserWarning, match="dropped 1 journaled"), open_writer(out, HEADER) as again:
        assert "late" not in again.tracks


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    with open_writer(tmp_path / "out.h5", HEADER) as writer:
        with pytest.raises(ValueError, match="track id"):
            writer.add_track(record("a/b"))
        with pytest.raises(ValueError, match=r"\(n_windows >= 1, 8\)"):
            writer.add_track(record("a", embeddings=np.zeros((3, 4), np.float32)))
        with pytest.raises(ValueError, match="n_windows"):
            writer.add_track(record("a", embeddings=np.zeros((0, DIM), np.float32)))
        assert writer.pending == 0


@pytest.mark.slow
@pytest.mark.parametrize("where", ["apply", "segment", "install", "delete"])
def test_kill_during_commit_loses_nothing(tmp_path: Path, where: str) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
        writer.add_track(record("b"))
    kill = "lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)"
    patch = {
        # dies inside the HDF5 write of the temp copy, after one entry was applied
        "apply": f"real = store._apply\nstore._apply = lambda *a: (real(*a), ({kill})())\n",
        # the segments are written, the new manifest is complete but not yet renamed
        "install": "import clmr_embed.atomic as atomic\nfrom clmr_embed.store import manifest\n"
        "def dying(path, data):\n"
        "    with atomic.atomic_path(path) as tmp:\n"
        "        tmp.write_bytes(data)\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "manifest.write_bytes = dying\n",
        # the segment file is written, its catalog sidecar not yet
        "segment": "from clmr_embed.store import segment\nreal = segment.write_bytes\n"
        "def dying(path, data):\n"
        "    real(path, data)\n"
        "    if path.suffix == '.h5':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "segment.write_bytes = dying\n",
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
    assert_tidy(out)  # no copies, no orphaned segments
    with open_store(out) as store:
        assert store.track_ids == ["a", "b", "c", "d"]
        np.testing.assert_array_equal(store.embeddings("b"), record("b", seed=1, n=5).embeddings)
        np.testing.assert_array_equal(store.embeddings("d"), record("c").embeddings)


@pytest.mark.slow
def test_random_sigkills_lose_no_finished_track(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    code = (
        "h = dataclasses.replace(HEADER, embedding_dim=512)\n"
        f"w = open_writer(Path({str(out)!r}), h)\n"
        "for i in range(len(w.tracks), 10**6):\n"
        "    print(f'start t{i:05d}', flush=True)\n"
        "    w.add_track(record(f't{i:05d}', n=60, embeddings=big(i)))\n"
        "    print(f'done t{i:05d}', flush=True)\n"
        "    if i % 4 == 3:\n        w.commit()\n"
    )
    rng = random.Random(5)
    done: set[str] = set()  # tracks the child reported journaled before it was killed
    started: set[str] = set()  # tracks it began to journal (a kill may land before "done")
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + code],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        wanted = rng.randint(2, 10)  # kill once this many more tracks were journaled
        lines = []
        for line in proc.stdout:
            lines.append(line.split())
            wanted -= line.startswith("done")
            if wanted == 0:
                break
        proc.send_signal(signal.SIGKILL)  # lands at some point after that event
        lines += [line.split() for line in proc.communicate()[0].splitlines()]
        assert proc.returncode == -signal.SIGKILL
        done |= {tid for event, tid in lines if event == "done"}
        started |= {tid for event, tid in lines if event == "start"}
        with warnings.catch_warnings():  # tracks may be pending: a warning is fine
            warnings.simplefilter("ignore")
            with open_store(out) as store:  # opens after every kill, with started tracks only
                assert set(store.track_ids) <= started
    assert len(done) >= 10
    with open_writer(out, dataclasses.replace(HEADER, embedding_dim=512)) as writer:
        assert done <= set(writer.tracks)
    with open_store(out) as store:
        for tid in sorted(done)[:: max(1, len(done) // 5)]:
            np.testing.assert_array_equal(store.embeddings(tid), big(int(tid[1:])))


def test_a_read_only_store_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
    out.chmod(0o444)
    before = out.read_bytes()
    for force in (False, True):
        with pytest.raises(StoreError, match=r"out.h5 is read-only \(mode 444\)"):
            open_writer(out, HEADER, force=force)
    assert out.read_bytes() == before and (out.stat().st_mode & 0o777) == 0o444


def test_force_refuses_files_that_are_not_stores(tmp_path: Path) -> None:
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes\n")
    with pytest.raises(StoreError, match="notes.h5 is not an HDF5 file; the force option only"):
        open_writer(notes, HEADER, force=True)
    assert notes.read_text() == "my notes\n"
    with pytest.raises(StoreError, match="does not exist; create it"):
        open_writer(tmp_path / "missing" / "out.h5", HEADER)

"""Decode workers: typed messages per file; a crashing worker fails only the file it was on."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.audio import WindowSpec
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.extract import workers as workers_module
from clmr_embed.extract.messages import Decoded, DecodeJob, Failed, Windows
from clmr_embed.extract.workers import decode_messages, decode_track, exit_reason
from tests.fixtures.audio import write_library, write_sine
from tests.fixtures.faults import CRASH_MARK, KILL_MARK, crashing_decoder, oom_killed_decoder

SPEC = WindowSpec(8000, 2187, 2187)


def test_decode_track_sends_windows_then_decoded(tmp_path: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 20.0, 8000)
    messages = list(decode_track(DecodeJob(3, str(song), SPEC, chunk_windows=16)))
    *chunks, last = messages
    windows = [m for m in chunks if isinstance(m, Windows)]
    assert len(windows) == len(chunks) and all(m.job == 3 for m in windows)
    assert [len(m.windows) for m in windows] == [16, 16, 16, 16, 9]  # 73 windows in 16s
    starts = np.concatenate([m.starts for m in windows])
    np.testing.assert_array_equal(starts, np.arange(73) * 2187)
    assert isinstance(last, Decoded) and last.job == 3
    assert last.file.duration_s == pytest.approx(20.0) and last.file.flags == ()


def test_a_bad_file_ends_in_failed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"nope" * 100)
    (message,) = decode_track(DecodeJob(0, str(bad), SPEC))
    assert isinstance(message, Failed) and "bad.mp3" in message.reason


def test_worker_processes_deliver_every_file(tmp_path: Path) -> None:
    paths = [write_sine(tmp_path / f"s{i}.wav", 200 + 50 * i, 3.0, 8000) for i in range(4)]
    jobs = [DecodeJob(i, str(p), SPEC) for i, p in enumerate(paths)]
    messages = [m for m in decode_messages(jobs, workers=2) if m is not None]
    decoded = sorted(m.job for m in messages if isinstance(m, Decoded))
    assert decoded == [0, 1, 2, 3]
    counts = [0] * 4
    for message in messages:
        if isinstance(message, Windows):
            counts[message.job] += len(message.windows)
    assert counts == [3 * 8000 // 2187] * 4


def test_a_crashing_decoder_fails_only_its_file(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    write_sine(lib / f"{CRASH_MARK}.wav", 440, 1.0, 8000)  # the worker process exits abruptly
    config = ExtractConfig(
        inputs=(lib,), output=tmp_path / "out.h5", model=str(tiny_tagger), workers=2
    )
    summary = run_extract(config, decode=crashing_decoder)
    assert summary.exit_code == 1
    failed = {f.path: f.reason for f in summary.failed}
    assert list(failed) == ["crashme.wav"] and "crashed" in failed["crashme.wav"]
    assert summary.embedded == 5


def test_a_worker_killed_by_the_os_is_reported_as_killed_not_as_a_bad_file(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    lib = write_library(tmp_path / "lib")
    write_sine(lib / f"{KILL_MARK}.wav", 440, 1.0, 8000)  # its worker is SIGKILLed (the OOM killer)
    config = ExtractConfig(
        inputs=(lib,), output=tmp_path / "out.h5", model=str(tiny_tagger), workers=2
    )
    summary = run_extract(config, decode=oom_killed_decoder)
    (failed,) = summary.failed
    assert failed.path == "oomed.wav" and "killed by SIGKILL" in failed.reason
    assert "memory" in failed.reason and "malformed" not in failed.reason
    assert summary.embedded == 5


def test_exit_reasons_tell_a_kill_from_a_crash() -> None:
    assert "killed by SIGKILL (likely out of memory)" in exit_reason("/a.wav", -signal.SIGKILL)
    assert "killed by SIGTERM" in exit_reason("/a.wav", -signal.SIGTERM)
    segfault = exit_reason("/a.wav", -signal.SIGSEGV)
    assert "crashed" in segfault and "SIGSEGV" in segfault and "malformed" in segfault
    assert "exit code 70" in exit_reason("/a.wav", 70)
    assert "\\x1b" in exit_reason("/a\x1b[2J.wav", 70)  # printable: control characters escaped


def test_no_more_processes_than_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real_start = workers_module.DecodePool._start

    def counting_start(pool: workers_module.DecodePool) -> object:
        started.append(1)
        return real_start(pool)

    monkeypatch.setattr(workers_module.DecodePool, "_start", counting_start)
    paths = [write_sine(tmp_path / f"s{i}.wav", 300, 1.0, 8000) for i in range(2)]
    jobs = [DecodeJob(i, str(p), SPEC) for i, p in enumerate(paths)]
    messages = [m for m in decode_messages(jobs, workers=64) if m is not None]
    assert sorted(m.job for m in messages if isinstance(m, Decoded)) == [0, 1]
    assert len(started) == 2  # 64 asked: ~190 processes once took 129 s for two files
    assert list(decode_messages([], workers=8)) == [] and len(started) == 2

"""Tests of clmr_embed.store.failures: a full disk, a read-only disk, and the advice each gets."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from clmr_embed.errors import DiskFullError, StoreError
from clmr_embed.store.failures import error_number, write_failure
from tests.fixtures.store import run_on_small_disk

H5PY_CLOSE = (  # what h5py raised from close() on a full disk before writes went through memory
    "Can't decrement id ref count (file write failed: time = Tue Dec  1 23:32:13 2026\n, "
    "filename = 'full/seg.h5', file descriptor = 3, errno = 28, error message = 'No space "
    "left on device', buf = 0x564c48edae80, total write size = 63524)"
)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_only_a_full_disk_or_quota_advises_freeing_space(code: int) -> None:
    failure = write_failure(OSError(code, "x"), "commit store s.h5", "tracks are kept")
    assert isinstance(failure, DiskFullError)
    assert str(failure).startswith("cannot commit store s.h5: the disk is full")
    assert "free disk space; tracks are kept" in str(failure)


@pytest.mark.parametrize(
    ("code", "advice"),
    [(errno.EACCES, "permission denied"), (errno.EPERM, "permission denied"),
     (errno.EROFS, "read-only"), (errno.EIO, "Input/output error")],
)  # fmt: skip
def test_other_failures_name_their_own_fix(code: int, advice: str) -> None:
    failure = write_failure(OSError(code, "x"), "lock store s.h5")
    assert type(failure) is StoreError and advice in str(failure)
    assert "free disk space" not in str(failure)


def test_errno_is_read_from_h5py_messages_too() -> None:
    assert error_number(RuntimeError(H5PY_CLOSE)) == errno.ENOSPC
    assert isinstance(write_failure(RuntimeError(H5PY_CLOSE), "commit"), DiskFullError)
    assert error_number(RuntimeError("no number here")) is None


@pytest.mark.slow
def test_a_full_disk_during_a_commit_keeps_everything(tmp_path: Path) -> None:
    child = run_on_small_disk(
        "from clmr_embed.errors import DiskFullError\n"
        "h = dataclasses.replace(HEADER, embedding_dim=512)\n"
        "filler = DISK / 'filler'\n"
        "filler.write_bytes(bytes(1000 * 1024))\n"
        "w = open_writer(DISK / 'out.h5', h)\n"
        "for i in range(5):\n"
        "    w.add_track(record(f't{i}', n=60, embeddings=big(i)))\n"  # journal: ~615 kB
        "try:\n"
        "    w.commit()\n"  # the segment needs ~615 kB more: the disk is full
        "except DiskFullError as exc:\n"
        "    print('FULL', exc)\n"
        "print('PENDING', w.pending)\n"
        "filler.unlink()\n"
        "w.close()\n"
        "from clmr_embed.store import open_store\n"
        "with open_store(DISK / 'out.h5') as s:\n"
        "    for i in range(5):\n"
        "        assert (s.embeddings(f't{i}') == big(i)).all()\n"
        "    print('TRACKS', len(s))\n",
        tmp_path / "disk",
        size_kb=2048,
    )
    assert child.returncode == 0, child.stderr
    assert "FULL cannot commit store" in child.stdout and "the disk is full" in child.stdout
    assert "PENDING 5" in child.stdout and "TRACKS 5" in child.stdout
    assert "Traceback" not in child.stderr and "RuntimeError" not in child.stderr


@pytest.mark.slow
def test_a_read_only_disk_gets_a_one_line_error_and_stays_readable(tmp_path: Path) -> None:
    child = run_on_small_disk(
        "import subprocess\n"
        "from clmr_embed.errors import StoreError\n"
        "from clmr_embed.store import open_store\n"
        "with open_writer(DISK / 'out.h5', HEADER) as w:\n"
        "    w.add_track(record('a'))\n"
        "subprocess.run(['mount', '-o', 'remount,ro', str(DISK)], check=True)\n"
        "try:\n"
        "    open_writer(DISK / 'out.h5', HEADER)\n"
        "except StoreError as exc:\n"
        "    print('REFUSED', exc)\n"
        "with open_store(DISK / 'out.h5') as s:\n"
        "    print('READ', s.track_ids)\n",
        tmp_path / "disk",
        size_kb=1024,
    )
    assert child.returncode == 0, child.stderr
    assert "REFUSED store" in child.stdout and "read-only file system" in child.stdout
    assert "free disk space" not in child.stdout and "READ ['a']" in child.stdout


@pytest.mark.slow
def test_extract_on_a_full_disk_prints_its_summary_and_exits_1(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    from tests.fixtures.audio import write_library

    lib = write_library(tmp_path / "lib")
    child = run_on_small_disk(
        "import json, subprocess, sys\n"
        "def extract():\n"
        f"    cmd = [sys.executable, '-m', 'clmr_embed', 'extract', {str(lib)!r},\n"
        f"           str(DISK / 'out.h5'), '--model', {str(tiny_tagger)!r}, '--json',\n"
        "           '--workers', '0']\n"
        "    run = subprocess.run(cmd, capture_output=True, text=True)\n"
        "    print(json.dumps([run.returncode, run.stdout, run.stderr]), flush=True)\n"
        "filler = DISK / 'filler'\n"
        "stat = os.statvfs(DISK)\n"
        "filler.write_bytes(bytes(stat.f_bavail * stat.f_frsize - 28 * 1024))\n"
        "extract()\n"
        "filler.unlink()\n"
        "extract()\n",
        tmp_path / "disk",
        size_kb=4096,
    )
    assert child.returncode == 0, child.stderr
    (code, stdout, stderr), again = map(json.loads, child.stdout.splitlines())
    summary = json.loads(stdout)  # the --json summary is still printed
    assert code == 1 and summary["exit_code"] == 1, stderr
    assert "the disk is full" in summary["store_error"]
    assert "Traceback" not in stderr and "error:" in stderr and "done:" in stderr
    assert (
        again[0] == 0 and json.loads(again[1])["embedded"] + json.loads(again[1])["unchanged"] == 5
    )

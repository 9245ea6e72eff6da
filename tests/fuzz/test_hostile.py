"""Fault and fuzz suite: every hostile file is embedded, flagged or recorded; nothing crashes.

One seeded library (tests/fuzz/hostile.py: ~60 paths, truncations, bit flips and noise bursts of
every container, NaN, 8 channels, 768 kHz, a lying ID3 tag, names that are not UTF-8 or hold
escapes, a FIFO, a broken link, a link loop) goes through the decoders and the CLI, each in a
child process under a timeout, so a crash or a hang fails the test naming the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clmr_embed.store import open_store
from tests.fuzz.hostile import Case, build

Library = tuple[Path, list[Case]]  # the hostile folder and what each of its paths must give
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240  # the whole library decodes in ~10 s; only a hang gets near this


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("hostile") / "lib"
    return root, build(root)


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"").decode("utf-8", "replace").splitlines()[-1:]
        pytest.fail(f"{what} hung; its last line: {tail}")


def test_the_decoders_raise_nothing_but_audio_decode_error(library: Library) -> None:
    root, cases = library
    done = _run(["-m", "tests.fuzz.decode_all", str(root)], "decoding")
    lines = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, f"the decoder crashed after {lines[-1:]}: {stderr[-500:]}"
    assert done.stderr == b""  # no raw decoder notes (mpg123), warnings or tracebacks
    outcomes = [line for line in lines if line["event"] == "done"]
    files = {case.relpath for case in cases if case.expect != "skipped"}
    assert {line["path"] for line in outcomes} == files
    foreign = [o for o in outcomes if o["outcome"] not in ("ok", "AudioDecodeError")]
    assert foreign == []
    for outcome in outcomes:
        if outcome["outcome"] == "AudioDecodeError":
            message = outcome["message"]
            assert "\n" not in message and "\x1b" not in message, message


def test_extract_embeds_flags_or_records_every_file(
    library: Library, tiny_tagger: Path, tmp_path: Path
) -> None:
    root, cases = library
    store_path = tmp_path / "out.h5"
    command = ["-m", "clmr_embed", "extract", str(root), str(store_path), "--model",
               str(tiny_tagger), "--json", "--workers", "2", "--batch-size", "7"]  # fmt: skip
    done = _run(command, "extract")
    stderr = done.stderr.decode("utf-8")  # valid UTF-8, as stdout
    assert done.returncode == 1, stderr  # the failed files
    assert "Traceback" not in stderr and "\x1b[2J" not in stderr, stderr
    summary = json.loads(done.stdout.decode("utf-8").splitlines()[-1])
    failed = {f["path"]: f["reason"] for f in summary["failed"]}
    skipped = {s["path"] for s in summary["skipped"]}
    flagged = {f["path"]: set(f["flags"]) for f in summary["flagged"]}
    with open_store(store_path) as store:  # opens after the run
        stored = set(store.paths)
        for case in cases:
            where = _where(case.relpath, stored, failed, skipped)
            assert where, f"{case.relpath!r} is neither embedded, recorded nor skipped"
            if case.expect == "embedded":
                assert where == "embedded" and case.relpath not in flagged, case
            elif case.expect == "flagged":
                assert where == "embedded" and set(case.flags) <= flagged[case.relpath], case
            elif case.expect in ("failed", "skipped"):
                assert where == case.expect, (case, where)
        assert set(store.errors) == set(failed)
    again = _run(command, "extract, again")
    rerun = json.loads(again.stdout.decode("utf-8").splitlines()[-1])
    assert rerun["embedded"] == 0 and rerun["unchanged"] == summary["embedded"]  # nothing redone
    assert {f["path"] for f in rerun["failed"]} == set(failed)


def test_tag_answers_every_file_with_tags_or_an_error(library: Library, tiny_tagger: Path) -> None:
    root, cases = library
    done = _run(
        ["-m", "clmr_embed", "tag", str(root), "--model", str(tiny_tagger), "--json"], "tag"
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    records = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert all(("tags" in r) != ("error" in r) for r in records)
    answered = {Path(r["path"]).relative_to(root).as_posix() for r in records}
    assert answered == {case.relpath for case in cases if case.expect != "skipped"}


def _where(relpath: str, stored: set[str], failed: dict[str, str], skipped: set[str]) -> str:
    if relpath in stored:
        return "embedded"
    return "failed" if relpath in failed else "skipped" if relpath in skipped else ""

"""`clmr-embed tag`: JSON records, short/silent flags, and memory that does not grow with length."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from clmr_embed.cli import app
from tests.fixtures.audio import write_audio, write_sine
from tests.fixtures.models import TinySpec, build_tiny_model

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]


def test_tag_json_schema(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.flac", 440, 2.0, 44100, channels=2)
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip())
    assert record["path"] == str(song) and record["model"] == "tiny"
    assert len(record["model_sha256"]) == 64 and record["task"] == "multilabel"
    assert [t["label"] for t in record["tags"]] and len(record["tags"]) == 3
    scores = [t["score"] for t in record["tags"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert record["n_windows"] == int(2.0 * 8000 // 2187)


def test_segments_give_a_taggram(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 2.0, 8000)
    result = runner.invoke(
        app, ["tag", str(song), "--model", str(tiny_tagger), "--json", "--segments"]
    )
    record = json.loads(result.stdout.strip())
    segments = record["segments"]
    assert len(segments) == record["n_windows"]
    assert segments[1]["start_s"] == pytest.approx(2187 / 8000, abs=1e-3)
    assert set(segments[0]["scores"]) == {"low", "mid", "high"}


def test_folder_with_a_bad_file_exits_1(tmp_path: Path, tiny_tagger: Path) -> None:
    write_sine(tmp_path / "good.wav", 440, 1.0, 8000)
    (tmp_path / "bad.mp3").write_bytes(b"nope" * 100)
    result = runner.invoke(app, ["tag", str(tmp_path), "--model", str(tiny_tagger), "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    records = {Path(r["path"]).name: r for r in lines}
    assert sorted(records) == ["bad.mp3", "good.wav"]  # every file gets a line, a bad one too
    assert "tags" in records["good.wav"] and "error" not in records["good.wav"]
    assert set(records["bad.mp3"]) == {"path", "error"}
    assert "bad.mp3" in records["bad.mp3"]["error"]


def test_table_output_on_terminal(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 1.0, 8000)
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger)])
    assert result.exit_code == 0
    assert "low" in result.stdout and "score" in result.stdout


def test_short_and_silent_files_are_flagged(tmp_path: Path, tiny_tagger: Path) -> None:
    write_sine(tmp_path / "short.wav", 440, 0.1, 8000)
    write_audio(tmp_path / "silent.wav", np.zeros(3 * 8000, np.float32), 8000)
    write_sine(tmp_path / "tone.wav", 440, 2.0, 8000)
    result = runner.invoke(app, ["tag", str(tmp_path), "--model", str(tiny_tagger), "--json"])
    assert result.exit_code == 0, result.output
    records = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert {name: r["flags"] for name, r in records.items()} == {
        "short.wav": ["short"],
        "silent.wav": ["silent"],
        "tone.wav": [],
    }
    assert records["short.wav"]["padded"] and not records["silent.wav"]["padded"]
    assert "short.wav: shorter than one window" in result.stderr
    assert "silent.wav: digital silence" in result.stderr
    assert "tone.wav" not in result.stderr


def test_segments_only_when_asked(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 3.0, 8000)
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger), "--json"])
    assert "segments" not in json.loads(result.stdout)


def _write_noise(path: Path, seconds: int, rate: int) -> Path:
    """Low-amplitude noise (a few LSB, so FLAC packs it small), written ten minutes at a time."""
    rng = np.random.default_rng(0)
    block = rng.integers(-3, 4, size=min(seconds, 600) * rate, dtype=np.int16)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as out:
        for _ in range(seconds // 600):
            out.write(block)
        out.write(block[: (seconds % 600) * rate])
    return path


def _tag_peak_rss_kb(song: Path, model: Path) -> tuple[int, dict]:
    """Peak RSS of one `clmr-embed tag` process, measured by a fresh parent that only waits."""
    measure = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(done.stdout, end='')\n"
    )
    tag = [sys.executable, "-m", "clmr_embed", "tag", str(song), "--model", str(model), "--json"]
    run = subprocess.run(
        [sys.executable, "-c", measure, *tag], cwd=ROOT, capture_output=True, text=True
    )
    first, record = run.stdout.splitlines()[:2]
    code, peak = map(int, first.split())
    assert code == 0, run.stderr
    return peak, json.loads(record)


@pytest.mark.slow
def test_tag_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    rate = 4000  # a tiny tagger at 4 kHz: three hours decode in seconds
    model = build_tiny_model(tmp_path / "tagger.onnx", TinySpec(sample_rate=rate))
    long = _write_noise(tmp_path / "three_hours.flac", 3 * 3600, rate)
    short = _write_noise(tmp_path / "two_minutes.flac", 120, rate)
    long_rss, long_record = _tag_peak_rss_kb(long, model)
    short_rss, short_record = _tag_peak_rss_kb(short, model)
    assert long_record["n_windows"] == 3 * 3600 * rate // 2187  # the whole file was tagged
    assert short_record["n_windows"] == 120 * rate // 2187
    # the decoded three hours alone (173 MB of float32) would dwarf the ~100 MB process
    assert long_rss <= 1.3 * short_rss, f"{long_rss} kB vs {short_rss} kB"


@pytest.mark.parametrize("as_json", [False, True])
def test_odd_names_tag_and_print_as_valid_escaped_utf8(
    tmp_path: Path, tiny_tagger: Path, as_json: bool
) -> None:
    write_sine(tmp_path / "a.wav", 440, 1.0, 8000).rename(tmp_path / os.fsdecode(b"caf\xe9.wav"))
    write_sine(tmp_path / "clear\x1b[2J.wav", 440, 1.0, 8000)
    args = ["tag", str(tmp_path), "--model", str(tiny_tagger)] + (["--json"] if as_json else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output  # table mode once raised UnicodeEncodeError
    text = result.stdout_bytes.decode("utf-8")  # strict: valid UTF-8
    if as_json:
        paths = sorted(Path(json.loads(line)["path"]).name for line in text.splitlines())
        assert paths == ["caf\\xe9.wav", "clear\x1b[2J.wav"]  # json escapes ESC itself
    else:
        assert "caf\\xe9.wav" in text and "clear\\x1b[2J.wav" in text and "\x1b[2J" not in text


def test_tag_records_the_engine_and_precision_that_ran(
    tmp_path: Path, tiny_tagger: Path, private_cache: Path
) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 2.0, 8000)
    args = ["tag", str(song), "--model", str(tiny_tagger), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    fp32 = json.loads(result.stdout.strip())
    assert (fp32["engine"], fp32["precision"]) == ("onnxruntime", "fp32")
    pytest.importorskip("openvino")
    result = runner.invoke(app, [*args, "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    bf16 = json.loads(result.stdout.strip())
    assert bf16["engine"] == "openvino" and bf16["precision"] in ("bf16", "fp32")
    assert [t["label"] for t in bf16["tags"]] == [t["label"] for t in fp32["tags"]]
    assert (private_cache / "precision-checks.json").is_file()  # checked before use


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (["--precision", "bf16", "--engine", "onnxruntime"], "runs on openvino"),
        (["--precision", "auto", "--device", "cuda"], "runs on the CPU"),
        (["--precision", "int4"], "int4"),
    ],
)
def test_impossible_precisions_exit_2_before_tagging(
    tmp_path: Path, tiny_tagger: Path, bad: list[str], says: str
) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 2.0, 8000)
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger), "--json", *bad])
    assert result.exit_code == 2 and result.stdout == ""
    assert says in " ".join(result.output.replace("│", " ").split())


def test_int8_without_its_file_says_how_to_build_it(tmp_path: Path, tiny_tagger: Path) -> None:
    model = tmp_path / "tiny.onnx"
    model.write_bytes(tiny_tagger.read_bytes())
    song = write_sine(tmp_path / "song.wav", 440, 2.0, 8000)
    result = runner.invoke(app, ["tag", str(song), "--model", str(model), "--precision", "int8"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = " ".join(result.output.split())
    assert "no int8 file tiny.int8.onnx" in line and "python -m tools.precision int8" in line

"""End-to-end `clmr-embed extract` on generated libraries with the tiny tagger."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clmr_embed.cli import app
from clmr_embed.store import open_store
from tests.fixtures.audio import sine, write_audio, write_library, write_sine
from tests.fixtures.scandir import lock_folder

runner = CliRunner()
WINDOW_S = 2187 / 8000  # the tiny model's window in seconds


def extract(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["extract", *args, "--json", "--workers", "0"])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, (json.loads(lines[-1]) if lines else {"output": result.output})


def test_library_round_trip(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    code, summary = extract(str(lib), str(store_path), "--model", str(tiny_tagger))
    assert code == 0, summary
    assert summary["embedded"] == 5 and summary["failed"] == []
    flags = {item["path"]: item["flags"] for item in summary["flagged"]}
    assert flags == {"short.wav": ["short"], "silent.wav": ["silent"]}
    with open_store(store_path) as store:
        assert sorted(store.paths) == sorted(
            ["a_stereo.wav", "Sub/b_8k.FLAC", "Sub/deeper/c.mp3", "short.wav", "silent.wav"]
        )
        emb = store.embeddings("a_stereo.wav")
        assert emb.dtype == np.float32 and emb.shape == (int(2.0 // WINDOW_S), 16)
        starts = store.starts_s("a_stereo.wav")
        np.testing.assert_allclose(starts, np.arange(len(starts)) * WINDOW_S, atol=1e-4)
        np.testing.assert_allclose(store.mean("a_stereo.wav"), emb.mean(axis=0), atol=1e-6)
        assert store.embeddings("short.wav").shape == (1, 16)
        assert store.header.sample_rate == 8000 and store.header.window_samples == 2187


def test_rerun_recomputes_nothing_and_tracks_changes(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    model = ["--model", str(tiny_tagger)]
    assert extract(str(lib), str(store_path), *model)[0] == 0
    code, again = extract(str(lib), str(store_path), *model)
    assert code == 0 and again["embedded"] == 0 and again["unchanged"] == 5
    # changed content at the same path is re-embedded under the same id
    write_sine(lib / "a_stereo.wav", 880, 3.0, 44100, channels=2)
    (lib / "silent.wav").unlink()
    shutil.copy(lib / "Sub" / "b_8k.FLAC", lib / "copy_of_b.flac")
    code, third = extract(str(lib), str(store_path), *model)
    assert code == 0, third
    assert third["embedded"] == 1 and third["aliased"] == 1 and third["missing"] == ["silent.wav"]
    with open_store(store_path) as store:
        assert store.embeddings("a_stereo.wav").shape[0] == int(3.0 // WINDOW_S)
        np.testing.assert_array_equal(
            store.embeddings("copy_of_b.flac"), store.embeddings("Sub/b_8k.FLAC")
        )
        assert "silent.wav" in store.paths  # kept until --prune
    code, pruned = extract(str(lib), str(store_path), *model, "--prune")
    assert pruned["pruned"] == 1
    with open_store(store_path) as store:
        assert "silent.wav" not in store.paths


def test_moved_library_keeps_ids(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    assert extract(str(lib), str(store_path), "--model", str(tiny_tagger))[0] == 0
    moved = tmp_path / "elsewhere" / "music"
    moved.parent.mkdir()
    lib.rename(moved)
    code, summary = extract(str(moved), str(store_path), "--model", str(tiny_tagger))
    assert code == 0 and summary["unchanged"] == 5 and summary["embedded"] == 0


def test_bad_files_are_recorded_and_exit_1(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    (lib / "corrupt.mp3").write_bytes(b"ID3" + b"\x00garbage" * 200)
    (lib / "empty.wav").write_bytes(b"")
    nan = sine(440, 1.0, 8000)
    nan[100] = np.nan
    write_audio(lib / "nan.wav", nan, 8000)
    store_path = tmp_path / "out.h5"
    code, summary = extract(str(lib), str(store_path), "--model", str(tiny_tagger))
    assert code == 1
    failed = {item["path"]: item["reason"] for item in summary["failed"]}
    assert set(failed) == {"corrupt.mp3", "empty.wav", "nan.wav"}
    assert "nan" in failed["nan.wav"].lower() and "nan.wav" in failed["nan.wav"]
    assert summary["embedded"] == 5  # the good files are all there
    with open_store(store_path) as store:
        assert set(store.errors) == set(failed)
        assert len(store) == 5
    # fixing a file clears its error on the next run
    write_sine(lib / "nan.wav", 440, 1.0, 8000)
    (lib / "corrupt.mp3").unlink()
    (lib / "empty.wav").unlink()
    code, summary = extract(str(lib), str(store_path), "--model", str(tiny_tagger))
    assert code == 0 and summary["embedded"] == 1
    with open_store(store_path) as store:
        assert store.errors == {}


def test_other_model_is_refused_unless_force(
    tmp_path: Path, tiny_tagger: Path, tiny_encoder: Path
) -> None:
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    assert extract(str(lib), str(store_path), "--model", str(tiny_tagger))[0] == 0
    result = runner.invoke(
        app, ["extract", str(lib), str(store_path), "--model", str(tiny_encoder)]
    )
    assert result.exit_code == 1
    assert "tiny-encoder" in result.output and "tiny" in result.output
    code, summary = extract(str(lib), str(store_path), "--model", str(tiny_encoder), "--force")
    assert code == 0 and summary["embedded"] == 5


def test_other_hop_is_refused(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    assert extract(str(lib), str(store_path), "--model", str(tiny_tagger))[0] == 0
    result = runner.invoke(
        app,
        ["extract", str(lib), str(store_path), "--model", str(tiny_tagger), "--hop-seconds", "0.1"],
    )
    assert result.exit_code == 1 and "hop" in result.output


def test_hop_and_workers(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    half = WINDOW_S / 2
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    args = ["--model", str(tiny_tagger), "--hop-seconds", str(half), "--batch-size", "5"]
    assert extract(str(lib), str(one), *args)[0] == 0
    result = runner.invoke(app, ["extract", str(lib), str(two), *args, "--workers", "2"])
    assert result.exit_code == 0, result.output
    with open_store(one) as a, open_store(two) as b:
        emb = a.embeddings("a_stereo.wav")
        n_expected = int((2.0 * 8000 - 2187) // round(half * 8000)) + 1
        assert emb.shape[0] == n_expected
        for path in a.paths:
            np.testing.assert_allclose(a.embeddings(path), b.embeddings(path), atol=1e-5)


@pytest.mark.parametrize("bad", ["--batch-size=0", "--device=tpu"])
def test_bad_options(tmp_path: Path, tiny_tagger: Path, bad: str) -> None:
    lib = write_library(tmp_path / "lib")
    result = runner.invoke(
        app, ["extract", str(lib), str(tmp_path / "o.h5"), "--model", str(tiny_tagger), bad]
    )
    assert result.exit_code == 2  # a usage error
    assert "Traceback" not in result.output


def test_missing_model_file_one_line_error(tmp_path: Path) -> None:
    lib = write_library(tmp_path / "lib")
    result = runner.invoke(
        app, ["extract", str(lib), str(tmp_path / "o.h5"), "--model", str(tmp_path / "nope.onnx")]
    )
    assert result.exit_code == 1
    assert "nope.onnx" in result.output and "Traceback" not in result.output


def test_second_writer_gets_a_lock_error(tmp_path: Path, tiny_tagger: Path) -> None:
    from clmr_embed.extract import ExtractConfig, run_extract
    from clmr_embed.store import open_writer

    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    run_extract(ExtractConfig(inputs=(lib,), output=store_path, model=str(tiny_tagger), workers=0))
    with open_store(store_path) as store:
        header = store.header
    with open_writer(store_path, header):  # another extract is writing this store
        result = runner.invoke(
            app, ["extract", str(lib), str(store_path), "--model", str(tiny_tagger)]
        )
    assert result.exit_code == 1
    assert "out.h5" in result.output and "Traceback" not in result.output


# --- hostile libraries (issue 13) ---


def _json_bytes(result) -> dict:
    """The --json line, decoded as strict UTF-8 (as jq would read it)."""
    lines = [line for line in result.stdout_bytes.decode("utf-8").splitlines() if line[:1] == "{"]
    return json.loads(lines[-1])


def test_names_that_are_not_utf8_or_hold_escapes_are_embedded(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    write_sine(lib / "plain.wav", 440, 1.0, 8000)
    latin1 = write_sine(lib / "latin1.wav", 330, 1.0, 8000)
    latin1.rename(lib / os.fsdecode(b"caf\xe9.wav"))  # a Latin-1 name, from an old disk
    write_sine(lib / "clear\x1b[2Jscreen.wav", 550, 1.0, 8000)
    (lib / "bad\nline\x1b[31m.mp3").write_bytes(b"not audio" * 50)
    store_path = tmp_path / "out.h5"
    args = ["extract", str(lib), str(store_path), "--model", str(tiny_tagger), "--json"]
    result = runner.invoke(app, [*args, "--workers", "0"])
    assert result.exit_code == 1, result.output  # the bad mp3
    summary = _json_bytes(result)
    assert summary["embedded"] == 3
    assert [f["path"] for f in summary["failed"]] == ["bad\nline\x1b[31m.mp3"]
    assert "\x1b" not in result.stderr and "bad\\nline\\x1b[31m.mp3" in result.stderr
    with open_store(store_path) as store:
        assert sorted(store.paths) == ["caf\\xe9.wav", "clear\x1b[2Jscreen.wav", "plain.wav"]


def test_two_folders_with_the_same_names_are_both_embedded(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    for folder, freq in (("rock", 440), ("jazz", 330)):
        (tmp_path / folder).mkdir()
        write_sine(tmp_path / folder / "good.wav", freq, 1.0, 8000)
    store_path = tmp_path / "out.h5"
    code, summary = extract(
        str(tmp_path / "rock"), str(tmp_path / "jazz"), str(store_path), "--model", str(tiny_tagger)
    )
    assert code == 0 and summary["embedded"] == 2, summary
    with open_store(store_path) as store:
        assert sorted(store.paths) == ["jazz/good.wav", "rock/good.wav"]


def test_a_remaining_clash_is_recorded_and_explained(tmp_path: Path, tiny_tagger: Path) -> None:
    for parent, freq in (("a", 440), ("b", 330)):  # two input folders both named "music"
        (tmp_path / parent / "music").mkdir(parents=True)
        write_sine(tmp_path / parent / "music" / "good.wav", freq, 1.0, 8000)
    store_path = tmp_path / "out.h5"
    inputs = [str(tmp_path / "a" / "music"), str(tmp_path / "b" / "music")]
    code, summary = extract(*inputs, str(store_path), "--model", str(tiny_tagger))
    assert code == 1 and summary["embedded"] == 1
    (failed,) = summary["failed"]
    assert "same relative path" in failed["reason"] and "rename" in failed["reason"]
    with open_store(store_path) as store:
        assert store.paths == ["music/good.wav"]
        assert list(store.errors) == [failed["path"]]  # once nothing reached /errors


def test_skipped_paths_are_listed_and_unreadable_folders_fail(
    tmp_path: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = write_library(tmp_path / "lib")
    os.symlink(tmp_path / "gone.wav", lib / "broken.wav")
    os.symlink(lib, lib / "Sub" / "loop")
    os.mkfifo(lib / "pipe.flac")
    store_path = tmp_path / "out.h5"
    code, summary = extract(str(lib), str(store_path), "--model", str(tiny_tagger))
    assert code == 0 and summary["embedded"] == 5  # notes only: nothing lost
    skipped = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {"broken.wav", "Sub/loop", "pipe.flac"}
    lock_folder(monkeypatch, lib / "Sub")
    code, summary = extract(str(lib), str(store_path), "--model", str(tiny_tagger))
    assert code == 1  # once exit 0 with only a UserWarning
    assert [f["path"] for f in summary["failed"]] == ["Sub"]
    assert "cannot list folder" in summary["failed"][0]["reason"]


@pytest.mark.parametrize(
    "bad",
    ["--hop-seconds=inf", "--hop-seconds=1e15", "--hop-seconds=nan", "--threads=-3",
     "--workers=1000", "--batch-size=100000000"],
)  # fmt: skip
def test_bad_values_are_usage_errors_before_any_work(
    tmp_path: Path, tiny_tagger: Path, bad: str
) -> None:
    lib = write_library(tmp_path / "lib")
    out = tmp_path / "o.h5"
    result = runner.invoke(app, ["extract", str(lib), str(out), "--model", str(tiny_tagger), bad])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("o.h5*")) and not list(tmp_path.glob(".o.h5*"))  # nothing made
    if "batch" in bad:
        assert "at most" in result.output and "fit" in result.output  # names the limit


def test_a_missing_output_folder_is_one_line(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    out = tmp_path / "no" / "such" / "out.h5"
    result = runner.invoke(app, ["extract", str(lib), str(out), "--model", str(tiny_tagger)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "does not exist" in result.output and "create it first" in result.output


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (["--precision", "bf16", "--engine", "onnxruntime"], "runs on openvino"),
        (["--precision", "int8", "--device", "cuda"], "runs on the CPU"),
        (["--precision", "fp16"], "fp16"),
        (["--engine", "tensorrt"], "tensorrt"),
    ],
)
def test_impossible_precisions_are_usage_errors_before_any_work(
    tmp_path: Path, tiny_tagger: Path, bad: list[str], says: str
) -> None:
    lib = write_library(tmp_path / "lib")
    out = tmp_path / "o.h5"
    result = runner.invoke(app, ["extract", str(lib), str(out), "--model", str(tiny_tagger), *bad])
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("o.h5*")) and not list(tmp_path.glob(".o.h5*"))


def _unboxed(output: str) -> str:
    """rich's usage-error box unwrapped into one line of words."""
    return " ".join(output.replace("│", " ").split())


def test_a_precision_whose_engine_is_missing_names_the_extra(
    tmp_path: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clmr_embed.engines import choice

    monkeypatch.setattr(choice, "installed", lambda engine: engine == "onnxruntime")
    lib = write_library(tmp_path / "lib")
    out = tmp_path / "o.h5"
    for asked in (["--precision", "bf16"], ["--engine", "openvino"]):
        args = ["extract", str(lib), str(out), "--model", str(tiny_tagger), *asked]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "pip install 'clmr-embed[openvino]'" in _unboxed(result.output)
    assert not out.exists()


def _has_bf16() -> bool:
    import openvino

    from clmr_embed.engines.openvino import cpu_capabilities

    return "BF16" in cpu_capabilities(openvino.Core())


@pytest.mark.usefixtures("private_cache")
def test_the_store_records_the_precision_and_refuses_another(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    pytest.importorskip("openvino")
    if not _has_bf16():
        pytest.skip("this CPU has no bf16: OpenVINO runs fp32 (see the fallback test)")
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    model = ["--model", str(tiny_tagger)]
    code, summary = extract(str(lib), str(store_path), *model, "--precision", "bf16")
    assert code == 0, summary
    assert summary["engine"] == {
        "name": "openvino",
        "precision": "bf16",
        "detail": "bf16 on OpenVINO CPU",
    }
    with open_store(store_path) as store:
        assert (store.header.engine, store.header.precision) == ("openvino", "bf16")
    again = runner.invoke(app, ["extract", str(lib), str(store_path), *model])  # fp32
    assert again.exit_code == 1 and "Traceback" not in again.output
    line = " ".join(again.output.split())
    assert "precision bf16 on openvino" in line and "precision fp32 on onnxruntime" in line
    code, summary = extract(str(lib), str(store_path), *model, "--force")
    assert code == 0 and summary["embedded"] == 5
    with open_store(store_path) as store:
        assert (store.header.engine, store.header.precision) == ("onnxruntime", "fp32")


@pytest.mark.usefixtures("private_cache")
def test_bf16_that_runs_fp32_is_recorded_as_fp32(
    tmp_path: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openvino")
    from clmr_embed.engines import openvino as ov_engine

    # a CPU without bf16: OpenVINO would run the bf16 hint in fp32 without a word
    monkeypatch.setattr(ov_engine, "cpu_capabilities", lambda core: ("FP32", "INT8"))
    lib = write_library(tmp_path / "lib")
    store_path = tmp_path / "out.h5"
    args = ["extract", str(lib), str(store_path), "--model", str(tiny_tagger), "--json"]
    result = runner.invoke(app, [*args, "--precision", "bf16", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "warning: precision 'bf16' was asked for, but openvino runs fp32" in result.stderr
    assert "UserWarning" not in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["engine"]["name"] == "openvino" and summary["engine"]["precision"] == "fp32"
    with open_store(store_path) as store:
        assert (store.header.engine, store.header.precision) == ("openvino", "fp32")

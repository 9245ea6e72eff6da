"""run_extract: the typed summary, its --json keys, refused models and configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.choices import Precision
from clmr_embed.errors import ConfigError, ModelArtifactError
from clmr_embed.extract import ExtractConfig, ExtractSummary, FailedFile, FlaggedFile, run_extract
from clmr_embed.store import open_store
from tests.fixtures.audio import write_library
from tests.fixtures.models import TinySpec, build_tiny_model

JSON_KEYS = [
    "store", "model", "engine", "workers", "files", "embedded", "unchanged", "aliased", "failed",
    "flagged", "skipped", "missing", "pruned", "damaged", "repaired", "store_error",
    "audio_seconds", "wall_seconds", "x_realtime", "exit_code",
]  # fmt: skip


def test_summary_is_typed_and_its_json_keeps_the_keys(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    (lib / "broken.mp3").write_bytes(b"nope" * 50)
    config = ExtractConfig(inputs=(lib,), output=tmp_path / "out.h5", model=str(tiny_tagger))
    summary = run_extract(config, progress=None)
    assert isinstance(summary, ExtractSummary)
    assert (summary.files, summary.embedded, summary.exit_code) == (6, 5, 1)
    assert summary.failed[0] == FailedFile("broken.mp3", summary.failed[0].reason)
    assert set(summary.flagged) == {
        FlaggedFile("short.wav", ("short",)),
        FlaggedFile("silent.wav", ("silent",)),
    }
    assert summary.duration_s == pytest.approx(2.0 + 1.5 + 2.0 + 0.1 + 2.0, abs=0.1)
    as_json = summary.to_dict()
    assert list(as_json) == JSON_KEYS
    assert as_json["model"] == {"name": "tiny", "sha256": summary.model_sha256, "trained": True}
    assert as_json["audio_seconds"] == round(summary.duration_s, 3)
    assert as_json["flagged"][0]["flags"] in (["short"], ["silent"])


def test_the_store_records_the_library_roots_it_was_extracted_from(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    rock, jazz = write_library(tmp_path / "rock"), write_library(tmp_path / "jazz")
    out = tmp_path / "out.h5"
    run_extract(ExtractConfig(inputs=(rock, jazz), output=out, model=str(tiny_tagger)))
    with open_store(out) as store:
        roots = {(root.folder, root.prefix) for root in store.roots}
    assert roots == {(rock.resolve(), "rock/"), (jazz.resolve(), "jazz/")}


def test_progress_hears_of_every_track(tmp_path: Path, tiny_tagger: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.total = -1
            self.seen: list[str] = []

        def start(self, total_files: int) -> None:
            self.total = total_files

        def advance(self, relpath: str, duration_s: float) -> None:
            self.seen.append(relpath)

    lib = write_library(tmp_path / "lib")
    recorder = Recorder()
    config = ExtractConfig(inputs=(lib,), output=tmp_path / "out.h5", model=str(tiny_tagger))
    run_extract(config, progress=recorder)
    assert recorder.total == 5 and len(recorder.seen) == 5


def test_a_head_only_model_is_refused(tmp_path: Path) -> None:
    head = build_tiny_model(tmp_path / "head.onnx", TinySpec(kind="head"))
    lib = write_library(tmp_path / "lib")
    with pytest.raises(ModelArtifactError, match="head-only"):
        run_extract(ExtractConfig(inputs=(lib,), output=tmp_path / "o.h5", model=str(head)))


@pytest.mark.parametrize(
    "bad", [{"batch_size": 0}, {"workers": -1}, {"threads": -1}, {"commit_every": 0}]
)
def test_bad_counts_are_config_errors(tmp_path: Path, bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))) as caught:
        ExtractConfig(inputs=(), output=tmp_path / "o.h5", **bad)  # type: ignore[arg-type]
    assert "--" not in str(caught.value)


BUNDLED = Path(__file__).resolve().parents[3] / "clmr_embed" / "models" / "clmr-free.onnx"


@pytest.mark.slow
@pytest.mark.usefixtures("private_cache")
def test_int8_runs_the_bundled_int8_file_and_the_store_says_so(
    tmp_path: Path, shared_dir: Path
) -> None:
    import numpy as np

    from clmr_embed.audio import load_audio
    from clmr_embed.store import open_store
    from tests.fixtures.audio import write_audio

    lib = tmp_path / "lib"
    lib.mkdir()
    for song in sorted((shared_dir / "audio" / "clmr_demo").glob("*.mp3"))[:2]:
        samples, _ = load_audio(song, 22050)
        write_audio(lib / f"{song.stem}.wav", samples[22050 * 30 : 22050 * 39], 22050)  # 3 windows
    stores = {}
    for precision in ("fp32", "int8"):
        out = tmp_path / f"{precision}.h5"
        config = ExtractConfig(
            inputs=(lib,), output=out, model=str(BUNDLED), precision=Precision(precision)
        )
        summary = run_extract(config)
        assert summary.exit_code == 0 and summary.precision == precision
        stores[precision] = out
    with open_store(stores["fp32"]) as fp32, open_store(stores["int8"]) as int8:
        assert int8.header.precision == "int8" and int8.header.engine in ("onnxruntime", "openvino")
        assert (fp32.header.engine, fp32.header.precision) == ("onnxruntime", "fp32")
        for path in fp32.paths:
            a, b = fp32.embeddings(path), int8.embeddings(path)
            assert not np.array_equal(a, b)  # another path really ran
            cosines = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            assert cosines.min() > 0.99

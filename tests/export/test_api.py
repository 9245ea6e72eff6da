"""ONNX + TorchScript export: files, parity with torch, metadata contract, --force, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
import onnxruntime as ort

pytest.importorskip("onnx")

from clmr_embed.artifact import KINDS, ModelInfo, parse_metadata
from clmr_embed.constants import MTAT_TAGS
from clmr_embed.digest import file_sha256
from clmr_embed.errors import CheckpointError, ConfigError, ParityError
from export import api
from export.api import ExportConfig, OutputExistsError, run_export
from export.torchscript import load_torchscript
from tests.export.conftest import SMALL_CHANNELS, Exported, random_encoder, save_small
from training.samplecnn import Tagger

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HEAD_FILE = SHARED / "weights" / "finetuner_checkpoint_200.pt"
HEAD_REFERENCE = SHARED / "weights" / "finetuner_head_reference.npz"
DEMO_SONG = SHARED / "audio" / "clmr_demo" / "john_lennon_imagine_22050.mp3"
HEAD_SHA256 = "547019f4e7967afc2a34b547a537bcf53cad62d77ea3498bdc077a80b1bbe260"  # SOURCES.md


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def metadata(path: Path) -> ModelInfo:
    return parse_metadata(session(path).get_modelmeta().custom_metadata_map, path)


def demo_windows(path: Path, starts_s: tuple[float, ...]) -> np.ndarray:
    """(n, 1, 59049) float32 windows of a real song: PyAV decode, channel mean, soxr to 22050."""
    av = pytest.importorskip("av")
    soxr = pytest.importorskip("soxr")
    need_s = max(starts_s) + 3.0
    chunks, rate, total = [], 0, 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        for frame in container.decode(stream):
            data = frame.to_ndarray().astype(np.float32)
            if not frame.format.is_planar:  # packed: (1, n * channels)
                data = data.reshape(-1, len(frame.layout.channels)).T
            chunks.append(data.mean(axis=0))
            total += data.shape[1]
            if total >= need_s * rate:
                break
    mono = np.concatenate(chunks)
    audio = mono if rate == 22050 else soxr.resample(mono, rate, 22050, "HQ")
    windows = [audio[int(s * 22050) : int(s * 22050) + 59049] for s in starts_s]
    return np.stack(windows)[:, None, :].astype(np.float32)


# --- the full-width export (one per session) ---------------------------------------------------


@pytest.mark.slow  # ONNX exports
def test_full_export_writes_every_artifact(full_export: Exported) -> None:
    names = sorted(path.name for path in full_export.report.files)
    assert names == sorted(f"full-{kind}{ext}" for kind in KINDS for ext in (".onnx", ".pt"))
    assert sorted(p.name for p in full_export.output_dir.iterdir()) == names  # no temp left over
    assert full_export.report.seconds > 0


@pytest.mark.slow  # ONNX exports
def test_full_export_parity_rows(full_export: Exported) -> None:
    rows = full_export.report.parity
    assert {(r.artifact, r.backend, r.batch) for r in rows} == {
        (f"full-{kind}{ext}", backend, batch)
        for kind in KINDS
        for ext, backend in ((".onnx", "onnxruntime"), (".pt", "torchscript"))
        for batch in (1, 3, 17)
    }
    assert all(0 <= r.max_abs_diff <= 1e-4 for r in rows)


@pytest.mark.slow  # ONNX exports
def test_full_export_on_real_audio(full_export: Exported) -> None:
    if not DEMO_SONG.is_file():
        pytest.skip("../shared/audio is not available")
    audio = demo_windows(DEMO_SONG, (5.0, 20.0, 40.0))
    assert np.abs(audio).max() > 0.05  # real music, not silence
    with torch.no_grad():
        tagger = Tagger(full_export.encoder, full_export.head)
        embedding, logits = tagger(torch.from_numpy(audio))
    out = full_export.output_dir
    got_embedding = session(out / "full-encoder.onnx").run(["embedding"], {"audio": audio})[0]
    got_tagger = session(out / "full-tagger.onnx").run(["embedding", "logits"], {"audio": audio})
    script, _ = load_torchscript(out / "full-tagger.pt")
    with torch.no_grad():
        script_embedding, script_logits = script(torch.from_numpy(audio))
    for got, want in (
        (got_embedding, embedding),
        (got_tagger[0], embedding),
        (got_tagger[1], logits),
        (script_embedding.numpy(), embedding),
        (script_logits.numpy(), logits),
    ):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=0)


@pytest.mark.slow  # ONNX exports
def test_metadata_round_trip(full_export: Exported) -> None:
    out, sha = full_export.output_dir, file_sha256(full_export.checkpoint)
    encoder, tagger, head = (metadata(out / f"full-{kind}.onnx") for kind in KINDS)
    assert (encoder.kind, encoder.labels, encoder.task) == ("encoder", (), "")
    assert (tagger.kind, tagger.labels, tagger.task) == ("tagger", MTAT_TAGS, "multilabel")
    assert (head.kind, head.labels) == ("head", MTAT_TAGS)
    for info in (encoder, tagger, head):
        assert (info.name, info.sample_rate, info.window_samples) == ("full", 22050, 59049)
        assert info.embedding_dim == 512 and info.trained is True and info.version
        assert info.licence == api.UNSPECIFIED_LICENCE
    assert encoder.source_sha256 == tagger.source_sha256 == sha
    assert head.source_sha256 == file_sha256(full_export.head_file)
    _, script_meta = load_torchscript(out / "full-tagger.pt")
    assert parse_metadata(script_meta, "full-tagger.pt") == tagger


@pytest.mark.slow  # ONNX exports
def test_dynamic_batch_axis_and_io_names(full_export: Exported) -> None:
    tagger = session(full_export.output_dir / "full-tagger.onnx")
    assert [(i.name, i.shape) for i in tagger.get_inputs()] == [("audio", ["batch", 1, 59049])]
    assert [(o.name, o.shape) for o in tagger.get_outputs()] == [
        ("embedding", ["batch", 512]),
        ("logits", ["batch", 50]),
    ]
    head = session(full_export.output_dir / "full-head.onnx")
    assert [(i.name, i.shape) for i in head.get_inputs()] == [("embedding", ["batch", 512])]


# --- the real official head ---------------------------------------------------------------------


@pytest.mark.slow  # ONNX exports
def test_official_head_onnx_reproduces_reference(tmp_path: Path) -> None:
    if not HEAD_FILE.is_file():
        pytest.skip("../shared/weights is not available")
    licence = "Apache-2.0 (CLMR authors)"
    report = run_export(ExportConfig(checkpoint=HEAD_FILE, output_dir=tmp_path, licence=licence))
    head_onnx = tmp_path / "finetuner_checkpoint_200-head.onnx"
    assert sorted(report.files) == [head_onnx, head_onnx.with_suffix(".pt")]
    reference = np.load(HEAD_REFERENCE)
    logits = session(head_onnx).run(["logits"], {"embedding": reference["embeddings"]})[0]
    np.testing.assert_allclose(logits, reference["logits"], atol=1e-5, rtol=0)
    info = metadata(head_onnx)
    assert info.labels == MTAT_TAGS and info.source_sha256 == HEAD_SHA256
    assert info.licence == licence and info.trained is True


# --- reduced-width exports ----------------------------------------------------------------------


@pytest.mark.slow  # ONNX exports
def test_head_inside_checkpoint_gives_tagger(tmp_path: Path) -> None:
    checkpoint = save_small(tmp_path / "small.pt", with_head=True)
    out = tmp_path / "out"
    config = ExportConfig(checkpoint=checkpoint, output_dir=out, licence="CC0", batch_check=(2,))
    report = run_export(config)
    assert {p.name for p in report.files} == {
        f"small-{k}{ext}" for k in KINDS for ext in (".onnx", ".pt")
    }
    info = metadata(tmp_path / "out" / "small-tagger.onnx")
    assert info.labels == ("calm", "busy", "odd") and info.task == "multiclass"
    assert info.embedding_dim == 32 and info.licence == "CC0" and info.trained is False


@pytest.mark.slow  # ONNX exports
def test_force_semantics(tmp_path: Path) -> None:
    checkpoint = save_small(tmp_path / "enc.pt", with_head=False)
    out = tmp_path / "out"
    first = run_export(ExportConfig(checkpoint=checkpoint, output_dir=out, batch_check=(2,)))
    assert [p.name for p in first.files] == ["enc-encoder.onnx", "enc-encoder.pt"]
    before = (out / "enc-encoder.onnx").read_bytes()
    (out / "enc-encoder.onnx").write_bytes(b"stale")
    with pytest.raises(OutputExistsError, match=r"enc-encoder\.onnx.*--force"):
        run_export(ExportConfig(checkpoint=checkpoint, output_dir=out, batch_check=(2,)))
    assert (out / "enc-encoder.onnx").read_bytes() == b"stale"  # kept without --force
    config = ExportConfig(checkpoint=checkpoint, output_dir=out, force=True, batch_check=(2,))
    run_export(config)
    assert (out / "enc-encoder.onnx").read_bytes() == before  # same weights -> same bytes


@pytest.mark.slow  # ONNX exports
def test_failed_parity_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object, **__: object) -> None:
        raise ParityError("forced failure")

    monkeypatch.setattr(api, "check_parity", fail)
    checkpoint = save_small(tmp_path / "enc.pt", with_head=False)
    with pytest.raises(ParityError):
        run_export(ExportConfig(checkpoint=checkpoint, output_dir=tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []


# --- errors ------------------------------------------------------------------------------------


def test_bad_inputs_are_one_line_checkpoint_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    wrong = tmp_path / "wrong.pt"
    state = random_encoder(SMALL_CHANNELS, seed=7).state_dict()
    state["sequential.2.1.running_var"] = torch.ones(9)
    torch.save(state, wrong)
    for path in (tmp_path / "missing.pt", text, wrong):
        with pytest.raises(CheckpointError) as failure:
            run_export(ExportConfig(checkpoint=path, output_dir=tmp_path / "out"))
        assert str(path) in str(failure.value) and "\n" not in str(failure.value)
    assert not (tmp_path / "out").exists()


def test_name_must_be_a_plain_prefix(tmp_path: Path) -> None:
    checkpoint = save_small(tmp_path / "enc.pt", with_head=False)
    with pytest.raises(ConfigError, match="plain file name"):
        run_export(ExportConfig(checkpoint=checkpoint, output_dir=tmp_path, name="../x"))

"""CPC export: a GRU graph matching torch, its contract metadata, embeddings through the runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
import onnxruntime as ort

pytest.importorskip("onnx")

from clmr_embed.embed import Embedder
from clmr_embed.errors import CheckpointError
from export.api import ExportConfig, run_export
from tests.export.conftest import random_head
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import CPCConfig, HeadConfig
from training.cpc import CPCEncoder

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEMO_SONG = SHARED / "audio" / "clmr_demo" / "john_lennon_imagine_22050.mp3"
SMALL = CPCConfig(hidden_dim=32, context_dim=24, prediction_steps=4)


def cpc_checkpoint(path: Path, **extra: object) -> CPCEncoder:
    torch.manual_seed(0)
    encoder = CPCEncoder(SMALL).eval()
    ckpt = Checkpoint(cpc_config=SMALL, encoder_state=encoder.state_dict(), step=5,
                      train_config={"method": "cpc"}, **extra)  # type: ignore[arg-type]  # fmt: skip
    save_checkpoint(path, ckpt)
    return encoder


def test_cpc_export_matches_torch_and_declares_its_architecture(tmp_path: Path) -> None:
    cpc_checkpoint(tmp_path / "cpc.pt")
    report = run_export(ExportConfig(checkpoint=tmp_path / "cpc.pt", output_dir=tmp_path / "out"))
    assert [f.name for f in report.files] == ["cpc-encoder.onnx", "cpc-encoder.pt"]
    assert {row.backend for row in report.parity} == {"onnxruntime", "torchscript"}
    assert all(row.max_abs_diff < 1e-4 * max(1.0, row.max_abs_ref) for row in report.parity)
    info = Embedder(tmp_path / "out" / "cpc-encoder.onnx").info
    assert (info.architecture, info.method, info.embedding_dim) == ("cpc", "cpc", 24)
    assert info.kind == "encoder" and info.window_samples == SMALL.window_samples


@pytest.mark.skipif(not DEMO_SONG.is_file(), reason="needs ../shared/audio/clmr_demo")
def test_the_runtime_embeds_a_song_with_the_cpc_encoder(tmp_path: Path) -> None:
    encoder = cpc_checkpoint(tmp_path / "cpc.pt")
    run_export(ExportConfig(checkpoint=tmp_path / "cpc.pt", output_dir=tmp_path / "out"))
    track = Embedder(tmp_path / "out" / "cpc-encoder.onnx").embed_file(DEMO_SONG)
    assert track.embeddings.shape[1] == 24 and len(track.embeddings) > 50
    first = torch.from_numpy(track.embeddings[:1])
    # the runtime's first window through torch gives the same embedding
    from clmr_embed.audio import load_audio

    audio, _ = load_audio(DEMO_SONG, SMALL.sample_rate)
    window = torch.from_numpy(audio[None, None, : SMALL.window_samples].astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(encoder(window), first, atol=1e-4, rtol=1e-3)


def test_a_cpc_encoder_with_a_head_is_refused_with_the_fix(tmp_path: Path) -> None:
    head = random_head(1, in_dim=24, n_labels=3)
    cpc_checkpoint(tmp_path / "cpc.pt", head_config=HeadConfig(in_dim=24, n_labels=3),
                   head_state=head.state_dict())  # fmt: skip
    with pytest.raises(CheckpointError, match="CPC encoder, which exports alone"):
        run_export(ExportConfig(checkpoint=tmp_path / "cpc.pt", output_dir=tmp_path / "out"))
    assert not (tmp_path / "out" / "cpc-encoder.onnx").exists()


def test_the_torch_free_converter_reads_a_cpc_checkpoint(tmp_path: Path) -> None:
    from clmr_embed.official.convert import Conversion, convert
    from clmr_embed.resolution import resolve_model

    encoder = cpc_checkpoint(tmp_path / "cpc.pt")
    info = convert(Conversion(tmp_path / "cpc.pt", tmp_path / "cpc.onnx"))
    assert (info.architecture, info.method, info.embedding_dim) == ("cpc", "cpc", 24)
    x = torch.randn(3, 1, SMALL.window_samples)
    session = ort.InferenceSession(str(tmp_path / "cpc.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["embedding"], {"audio": x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), encoder(x), atol=1e-5, rtol=1e-4)
    # what `train linear` and `extract --model cpc.pt` do with a checkpoint
    assert resolve_model(tmp_path / "cpc.pt").suffix == ".onnx"


def test_a_damaged_cpc_checkpoint_names_the_key(tmp_path: Path) -> None:
    from clmr_embed.official.convert import Conversion, convert

    encoder = cpc_checkpoint(tmp_path / "ok.pt")
    state = encoder.state_dict()
    state["gru.weight_hh_l0"] = state["gru.weight_hh_l0"][:, :5]
    save_checkpoint(tmp_path / "bad.pt", Checkpoint(cpc_config=SMALL, encoder_state=state))
    with pytest.raises(CheckpointError, match=r"gru\.weight_hh_l0.*expected \[72, 24\]"):
        convert(Conversion(tmp_path / "bad.pt", tmp_path / "bad.onnx"))
    assert not (tmp_path / "bad.onnx").exists()

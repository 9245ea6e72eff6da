"""The one model resolution: names, ONNX files and checkpoints, the same forms everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from clmr_embed.embed import Embedder
from clmr_embed.engines.reference import load_reference
from clmr_embed.errors import CheckpointError, ModelArtifactError
from clmr_embed.registry import MODELS, bundled_path
from clmr_embed.resolution import resolve_model

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "clmr-free.pt"  # the weights the bundled model came from
BUNDLED = bundled_path(MODELS["clmr-free"])


def _embedding(model: Path) -> np.ndarray:
    audio = load_reference().windows(22050, 59049)[:4, None, :]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {"audio": audio})[0]


def test_names_and_onnx_files(tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLMR_EMBED_MODEL", raising=False)
    assert resolve_model(None) == resolve_model("clmr-free") == BUNDLED
    assert resolve_model(tiny_tagger) == tiny_tagger
    monkeypatch.setenv("CLMR_EMBED_MODEL", str(tiny_tagger))
    assert resolve_model(None) == tiny_tagger  # the environment is below an explicit model
    assert resolve_model("clmr-free") == BUNDLED


def test_a_checkpoint_is_converted_once_without_torch(private_cache: Path) -> None:
    told: list[str] = []
    model = resolve_model(CHECKPOINT, notify=told.append)
    assert model.parent == private_cache / "converted" and len(told) == 1
    assert resolve_model(CHECKPOINT, notify=told.append) == model and len(told) == 1  # cached
    # The committed checkpoint converted here embeds as the bundled model exported from it.
    assert np.abs(_embedding(model) - _embedding(BUNDLED)).max() <= 1e-5


def test_the_embedder_takes_a_checkpoint(private_cache: Path) -> None:
    embedder = Embedder(str(CHECKPOINT))
    assert embedder.model.info.name == "clmr-free" and embedder.model.info.kind == "encoder"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("no-such-model", ModelArtifactError, "a model name .*clmr-free.*onnx.*checkpoint"),
        ("missing.onnx", ModelArtifactError, "does not exist"),
    ],
)
def test_unknown_values_name_the_accepted_forms(
    value: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        resolve_model(value)
    assert value in str(caught.value) and "--" not in str(caught.value)


def test_folders_and_non_checkpoints(tmp_path: Path, private_cache: Path) -> None:
    with pytest.raises(ModelArtifactError, match="is a folder"):
        resolve_model(tmp_path)
    fake = tmp_path / "song.pt"
    fake.write_bytes(b"ID3 not a checkpoint")
    with pytest.raises(CheckpointError, match="song.pt"):
        resolve_model(fake)
    assert not list((private_cache / "converted").glob("*.onnx"))

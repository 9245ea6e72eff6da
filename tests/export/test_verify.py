"""The parity check: an artifact that matches its torch model passes, another one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.artifact import ENCODER_IO, ModelInfo
from clmr_embed.errors import ParityError
from export.onnx import export_encoder
from export.verify import Artifact, check_parity
from tests.export.conftest import SMALL_CHANNELS, random_encoder


@pytest.mark.slow  # an ONNX export
def test_parity_check_catches_a_wrong_artifact(tmp_path: Path) -> None:
    encoder = random_encoder(SMALL_CHANNELS, seed=4)
    info = ModelInfo("encoder", "small", 22050, 59049, 32, licence="x", source_sha256="0")
    export_encoder(encoder, tmp_path / "e.onnx", info)
    artifact = Artifact(tmp_path / "e.onnx", ENCODER_IO, (1, 59049), encoder)
    assert max(r.max_abs_diff for r in check_parity([artifact], batches=(1, 3))) < 1e-5
    other = random_encoder(SMALL_CHANNELS, seed=5)
    wrong = Artifact(tmp_path / "e.onnx", ENCODER_IO, (1, 59049), other)
    with pytest.raises(ParityError, match=r"e\.onnx \(onnxruntime, batch 1\)") as failure:
        check_parity([wrong], batches=(1, 3))
    assert len(failure.value.rows) == 2  # type: ignore[attr-defined]

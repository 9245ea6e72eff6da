"""The untrained placeholder tagger (the random-init baseline): metadata, parity, size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
import onnxruntime as ort

pytest.importorskip("onnx")

from clmr_embed.artifact import parse_metadata
from clmr_embed.constants import MTAT_TAGS
from export.placeholder import build_placeholder, write_placeholder
from training.samplecnn import Tagger


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow  # a full-width ONNX export
def test_placeholder_is_the_seed_0_untrained_model(tmp_path: Path) -> None:
    output = tmp_path / "clmr-untrained.onnx"
    rows = write_placeholder(output)
    assert rows and max(r.max_abs_diff for r in rows) < 1e-4
    info = parse_metadata(session(output).get_modelmeta().custom_metadata_map, output)
    assert (info.kind, info.name, info.trained) == ("tagger", "clmr-untrained", False)
    assert info.labels == MTAT_TAGS and info.task == "multilabel"
    assert "untrained" in info.description.lower() and "random weights" in info.licence
    assert output.stat().st_size < 12_000_000
    encoder, head = build_placeholder()
    audio = (np.random.default_rng(0).uniform(-1, 1, (2, 1, 59049))).astype(np.float32)
    with torch.no_grad():
        embedding, logits = Tagger(encoder, head)(torch.from_numpy(audio))
    got = session(output).run(["embedding", "logits"], {"audio": audio})
    np.testing.assert_allclose(got[0], embedding.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(got[1], logits.numpy(), atol=1e-4, rtol=0)

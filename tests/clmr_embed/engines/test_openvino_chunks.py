"""OpenVINO's chunking of a batch over its streams changes no number, and every window comes back
in order whatever the batch and chunk sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.digest import ModelFile
from clmr_embed.engines import openvino as ov_engine
from clmr_embed.engines.engine import EngineConfig

pytest.importorskip("openvino")


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_chunk_sizes_give_the_same_embeddings(
    tiny_tagger: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows = np.random.default_rng(batch).uniform(-1, 1, (batch, 2187)).astype(np.float32)
    results = {}
    for chunk in (0, 1, 2, 5):
        monkeypatch.setattr(ov_engine, "CHUNK_WINDOWS", chunk)
        engine = ov_engine.OpenVinoEngine(
            ModelFile.hashed(tiny_tagger), "fp32", EngineConfig(threads=2)
        )
        results[chunk] = engine.run(windows)
    for emb, logits in results.values():
        assert emb.shape == (batch, 16) and logits is not None and len(logits) == batch
        np.testing.assert_array_equal(emb, results[0][0])
        np.testing.assert_array_equal(logits, results[0][1])

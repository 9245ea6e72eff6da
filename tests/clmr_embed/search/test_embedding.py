"""StoreEmbedder: new audio is embedded by the store's model at the store's precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.choices import Precision
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.search import StoreEmbedder
from clmr_embed.store import open_store


def test_fp32_stores_embed_on_onnxruntime(tiny_source: Path, tiny_tagger: Path) -> None:
    with open_store(tiny_source) as store:
        embedder = StoreEmbedder(store, tiny_tagger)
        model = embedder.embedder.model
        assert (model.engine, model.precision) == ("onnxruntime", "fp32")


@pytest.mark.usefixtures("private_cache")
def test_a_low_precision_store_embeds_queries_alike(
    tmp_path: Path, tiny_lib: Path, tiny_tagger: Path
) -> None:
    pytest.importorskip("openvino")
    out = tmp_path / "bf16.h5"
    config = ExtractConfig(
        inputs=(tiny_lib,), output=out, model=str(tiny_tagger), workers=0, precision=Precision.bf16
    )
    assert run_extract(config).exit_code == 0
    with open_store(out) as store:
        header = store.header
        if header.precision == "fp32":
            pytest.skip("this CPU has no bf16: the store fell back to fp32 (nothing low to match)")
        embedder = StoreEmbedder(store, tiny_tagger)
        model = embedder.embedder.model
        assert (model.engine, model.precision) == (header.engine, header.precision)
        song = sorted(tiny_lib.glob("*.wav"))[0]
        np.testing.assert_allclose(
            embedder.embed_file(song).embeddings, store.embeddings(song.name), atol=1e-6
        )

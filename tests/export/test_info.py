"""model_info: this version, the shape and outputs given, and clmr.trained by the one rule."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch")

from clmr_embed import __version__
from clmr_embed.artifact import parse_metadata
from export.info import Provenance, Shape, model_info
from training.config import EncoderConfig

SHAPE = Shape.of_encoder(EncoderConfig())


def _trained(**provenance: Any) -> bool:
    about = Provenance(licence="x", source_sha256="0" * 64, description="d", **provenance)
    return model_info("encoder", "m", SHAPE, about).trained


def test_trained_follows_the_sources_the_step_and_a_declaration() -> None:
    assert _trained(sources=("official CLMR v1 raw state dict",)) is True
    assert _trained(sources=("clmr-embed",), step=0) is False
    assert _trained(sources=("clmr-embed",), step=5) is True
    assert _trained(sources=("clmr-embed", "official CLMR finetuner head"), step=0) is False
    assert _trained(sources=("official CLMR v1 raw state dict",), declared=False) is False


def test_the_info_round_trips_through_the_metadata() -> None:
    about = Provenance(licence="CC0", source_sha256="ab" * 32, description="test", declared=True)
    info = model_info("tagger", "tiny", SHAPE, about, ("a", "b"), "multiclass")
    assert (info.version, info.sample_rate, info.window_samples) == (__version__, 22050, 59049)
    assert (info.embedding_dim, info.labels, info.task, info.licence) == (
        512,
        ("a", "b"),
        "multiclass",
        "CC0",
    )
    assert parse_metadata(info.to_metadata(), "tiny.onnx") == info
    assert Shape.of_info(info) == SHAPE

"""Where an int8 file lives and what ties it to its fp32 model."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.engines.variant import (
    PRECISION_KEY,
    SOURCE_KEY,
    check_variant,
    int8_path,
    variant_path,
)
from clmr_embed.errors import ConfigError, ModelArtifactError


def test_int8_path_sits_beside_the_model() -> None:
    assert int8_path(Path("/m/clmr-free.onnx")) == Path("/m/clmr-free.int8.onnx")
    assert int8_path(Path("tagger")) == Path("tagger.int8.onnx")


def test_variant_path_needs_the_int8_file(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert variant_path(model, "fp32") == model
    with pytest.raises(ModelArtifactError, match=r"no int8 file m\.int8\.onnx.*tools.precision"):
        variant_path(model, "int8")
    (tmp_path / "m.int8.onnx").write_bytes(b"y")
    assert variant_path(model, "int8") == tmp_path / "m.int8.onnx"
    with pytest.raises(ConfigError, match="bf16"):
        variant_path(model, "bf16")


def test_check_variant_refuses_stale_and_swapped_files(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    int8 = {PRECISION_KEY: "int8", SOURCE_KEY: "a" * 64}
    check_variant(model, "int8", "a" * 64, int8)
    check_variant(model, "fp32", "a" * 64, {})
    with pytest.raises(ModelArtifactError, match="quantized from another model file"):
        check_variant(model, "int8", "b" * 64, int8)
    with pytest.raises(ModelArtifactError, match="is an int8 file; pass the fp32 model"):
        check_variant(model, "fp32", "a" * 64, int8)

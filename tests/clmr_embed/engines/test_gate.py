"""The first-use check: centred cosine to fp32 on the reference windows, cached, refusing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.artifact import ModelInfo
from clmr_embed.digest import ModelFile
from clmr_embed.engines.engine import Engine, PrecisionError
from clmr_embed.engines.gate import (
    MIN_COSINE,
    Check,
    cache_path,
    check_key,
    cpu_identity,
    lookup,
    validate,
    window_cosines,
)
from clmr_embed.engines.onnxruntime import OnnxRuntimeEngine

INFO = ModelInfo("encoder", "fake", 8000, 2187, 4)


@dataclass
class FakeEngine:
    """A candidate whose embeddings are the reference's plus a fixed distortion."""

    reference: Engine | None  # None: a candidate that must not run (a cache hit is expected)
    noise: float = 0.0  # std of the noise added to the reference embeddings
    info: ModelInfo = INFO
    path: Path = Path("fake.onnx")
    sha256: str = "f" * 64
    engine: str = "openvino"
    version: str = "1.0"
    precision: str = "int8"
    detail: str = "fake"

    def run(self, windows: np.ndarray) -> tuple[np.ndarray, None]:
        assert self.reference is not None, "the cached result should have been used"
        emb, _ = self.reference.run(windows)
        rng = np.random.default_rng(0)
        return emb + self.noise * rng.standard_normal(emb.shape).astype(np.float32), None


def test_window_cosines_centre_by_the_reference_mean() -> None:
    ref = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    np.testing.assert_allclose(window_cosines(ref, ref), 1.0)
    # Scaling about the mean keeps every cosine at 1; flipping about it gives -1.
    centre = ref.mean(axis=0)
    np.testing.assert_allclose(window_cosines(centre + 2 * (ref - centre), ref), 1.0)
    flipped = 2 * ref.mean(axis=0) - ref
    np.testing.assert_allclose(window_cosines(flipped, ref), -1.0)
    # Uncentred these rows are all close to [2, 0] (cosine ~0.9); centred, orthogonal rows.
    swapped = ref[[2, 3, 0, 1]]
    assert np.abs(window_cosines(swapped, ref)).max() < 1e-9


def test_a_close_path_passes_and_is_cached(tiny_encoder: Path) -> None:
    reference = OnnxRuntimeEngine(ModelFile.hashed(tiny_encoder))
    candidate = FakeEngine(reference, noise=1e-4)
    result = validate(candidate, Check(reference=lambda: reference, requested="int8"))
    assert result.passed and result.cosine_min >= MIN_COSINE and result.windows_per_s > 0
    assert result.key == check_key("f" * 64, "openvino", "1.0", "int8")
    assert cpu_identity() in result.key
    stored = json.loads(cache_path().read_text())
    assert stored[result.key]["cosine_min"] == result.cosine_min

    def no_reference() -> Engine:
        raise AssertionError("a cached path must not be checked again")

    again = validate(FakeEngine(None), Check(reference=no_reference, requested="int8"))
    assert again == result


def test_a_distorted_path_is_refused_now_and_later(tiny_encoder: Path) -> None:
    reference = OnnxRuntimeEngine(ModelFile.hashed(tiny_encoder))
    with pytest.raises(PrecisionError, match=r"openvino int8 is refused.*needs 0\.99"):
        validate(FakeEngine(reference, noise=0.3), Check(lambda: reference, "int8"))
    cached = lookup(check_key("f" * 64, "openvino", "1.0", "int8"))
    assert cached is not None and not cached.passed and cached.cosine_min < MIN_COSINE
    with pytest.raises(PrecisionError):
        validate(FakeEngine(None), Check(lambda: reference, "int8"))


def test_another_model_version_or_precision_is_checked_again(tiny_encoder: Path) -> None:
    reference = OnnxRuntimeEngine(ModelFile.hashed(tiny_encoder))
    validate(FakeEngine(reference), Check(lambda: reference, "int8"))
    assert lookup(check_key("e" * 64, "openvino", "1.0", "int8")) is None
    assert lookup(check_key("f" * 64, "openvino", "1.1", "int8")) is None
    assert lookup(check_key("f" * 64, "openvino", "1.0", "bf16")) is None


def test_an_unreadable_cache_counts_as_empty(tiny_encoder: Path) -> None:
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text("{not json")
    reference = OnnxRuntimeEngine(ModelFile.hashed(tiny_encoder))
    assert validate(FakeEngine(reference), Check(lambda: reference, "int8")).passed
    assert len(json.loads(cache_path().read_text())) == 1

"""onnxruntime intra-op spinning: off on request (decoders share the cores), same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clmr_embed.digest import ModelFile
from clmr_embed.engines.engine import EngineConfig
from clmr_embed.engines.onnxruntime import OnnxRuntimeEngine


def test_spin_off_reaches_the_session_and_changes_no_number(tiny_tagger: Path) -> None:
    windows = np.random.default_rng(3).uniform(-1, 1, (7, 2187)).astype(np.float32)
    spinning = OnnxRuntimeEngine(
        ModelFile.hashed(tiny_tagger), "fp32", EngineConfig(device="cpu", threads=2)
    )
    quiet = OnnxRuntimeEngine(
        ModelFile.hashed(tiny_tagger), "fp32", EngineConfig(device="cpu", threads=2, spin=False)
    )
    assert spinning.model.spins and not quiet.model.spins
    for a, b in zip(spinning.run(windows), quiet.run(windows), strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a, b)

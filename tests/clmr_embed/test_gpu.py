"""The gpu extra: CUDA onnxruntime runs the bundled model as the CPU does (gpu-marked)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from clmr_embed.model import OnnxModel, SessionConfig
from clmr_embed.resolution import resolve_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in ort.get_available_providers(),
        reason="needs onnxruntime-gpu and a CUDA device",
    ),
]


def test_cuda_is_chosen_and_agrees_with_the_cpu() -> None:
    path = resolve_model("clmr-free")
    gpu = OnnxModel(path, SessionConfig("cuda", 0))
    cpu = OnnxModel(path, SessionConfig("cpu", 0))
    assert gpu.providers[0] == "CUDAExecutionProvider" and gpu.binding_device == "cuda"
    windows = np.random.default_rng(0).standard_normal((4, gpu.info.window_samples)) * 0.1
    got, want = (m.run(windows.astype(np.float32))[0] for m in (gpu, cpu))
    np.testing.assert_allclose(got, want, atol=1e-3)

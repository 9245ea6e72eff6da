"""training.filters: gradient ascent finds tuned inputs; ONNX weights rebuild the same encoder."""

from pathlib import Path

import numpy as np
import pytest
import torch

from training import filters
from training.filters import AscentConfig, optimise_inputs, peak_concentration, spectra

BUNDLED = Path(__file__).resolve().parents[2] / "clmr_embed" / "models" / "clmr-free.onnx"


def test_white_noise_has_no_concentration_and_a_sine_has_much():
    rng = np.random.default_rng(0)
    noise = spectra(rng.standard_normal((64, 729)).astype(np.float32))
    t = np.arange(729) / 22050
    sine = spectra(np.sin(2 * np.pi * 3000 * t)[None].astype(np.float32))
    assert np.median(peak_concentration(noise)) < 3
    assert peak_concentration(sine)[0] > 30


def test_input_length_is_729_then_one_frame():
    assert [filters.input_samples(k) for k in (1, 6, 7, 8)] == [729, 729, 2187, 6561]


@pytest.fixture(scope="module")
def bundled():
    pytest.importorskip("onnx")
    return filters.encoder_from_onnx(BUNDLED).eval()


def test_onnx_weights_rebuild_the_bundled_encoder(bundled):
    import onnxruntime as ort

    x = np.random.default_rng(1).standard_normal((2, 1, 59049)).astype(np.float32) * 0.1
    (want,) = ort.InferenceSession(str(BUNDLED)).run(["embedding"], {"audio": x})
    with torch.no_grad():
        got = bundled(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_layer1_filters_are_tuned(bundled):
    inputs = optimise_inputs(bundled, 1, AscentConfig(steps=30))  # 0 steps: 1 % pass
    assert inputs.shape == (128, 729)
    np.testing.assert_allclose((inputs**2).mean(axis=1), 1, rtol=1e-4)
    concentration = peak_concentration(spectra(inputs))
    assert (concentration >= 5).mean() >= 0.8


def _own_mean(bundled, layer: int, inputs: np.ndarray) -> float:
    net = filters._pre_relu(bundled, layer).eval()
    own = torch.arange(len(inputs))
    with torch.no_grad():
        return net(torch.from_numpy(inputs)[:, None])[own, own].mean().item()


def test_ascent_raises_the_filter_activation(bundled):
    before = _own_mean(bundled, 2, optimise_inputs(bundled, 2, AscentConfig(steps=0)))
    after = _own_mean(bundled, 2, optimise_inputs(bundled, 2, AscentConfig(steps=15)))
    assert after > before + 1.0


def test_render_writes_a_png(tmp_path):
    mags = spectra(np.random.default_rng(0).standard_normal((8, 729)).astype(np.float32))
    out = filters.render({1: mags, 2: mags}, 22050, tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""SampleCNN2d: the Conv2d form computes what SampleCNN computes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from export.conv2d import SampleCNN2d  # noqa: E402
from tests.export.conftest import SMALL_CHANNELS, random_encoder  # noqa: E402


def test_conv2d_form_matches_samplecnn() -> None:
    encoder = random_encoder(SMALL_CHANNELS, seed=6)
    audio = torch.rand(3, 1, 59049) * 2 - 1
    with torch.no_grad():
        want, got = encoder(audio), SampleCNN2d(encoder).eval()(audio)
    assert got.shape == (3, 32)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)

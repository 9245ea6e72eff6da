"""Baselines: MFCC statistics (mel, DCT, deltas) and the random SampleCNN with calibrated BN."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import DataError
from training.checkpoint import save_checkpoint
from training.config import EncoderConfig
from training.linear.baselines import (
    dct_matrix,
    mel_filterbank,
    mfcc_features,
    random_encoder_checkpoint,
)
from training.linear.config import LinearEvalConfig
from training.linear.dataset import LabelledSet
from training.linear.probe import run_linear_eval
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint


def test_dct_and_mel_filterbank():
    from scipy.fft import dct

    v = np.random.default_rng(0).random(128)
    np.testing.assert_allclose(v @ dct_matrix(20, 128).T, dct(v, norm="ortho")[:20])
    mel = mel_filterbank(22050)
    assert mel.shape == (128, 1025) and (mel >= 0).all() and (mel.sum(1) > 0).all()
    centres = mel.argmax(1)
    assert (np.diff(centres) >= 0).all() and centres[-1] > 900  # ordered low -> high


@pytest.mark.slow  # decodes and probes 12 clips
def test_mfcc_features_separate_two_tones(tmp_path):
    sf = pytest.importorskip("soundfile")
    rng = np.random.default_rng(0)
    t = np.arange(int(59049 * 2.5)) / 22050
    paths, classes = [], []
    for i in range(12):
        freq = (300.0 if i % 2 else 2500.0) * (1 + 0.05 * rng.random())
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)
        sf.write(tmp_path / f"{i}.wav", wave.astype(np.float32), 22050)
        paths.append(tmp_path / f"{i}.wav")
        classes.append(i % 2)
    features = mfcc_features(paths, n_mfcc=13)
    assert len(features) == 12 and features.dim == 52
    assert all(w.shape[0] == 2 for w in features.windows)  # 2.5 windows: partial tail dropped
    data = LabelledSet(
        Path(tmp_path),
        tuple(paths),
        ("high", "low"),
        np.eye(2, dtype=np.float32)[classes],
        "multiclass",
        tuple(str(p) for p in paths),
        (None,) * 12,
    )
    config = LinearEvalConfig(folds=3, max_epochs=50, batch_size=8, lr=1e-2, standardise=True)
    assert run_linear_eval(features, data, config).summary["accuracy"][0] == 1.0


def test_random_encoder_batchnorm_is_recalibrated_and_seeded(tmp_path):

    config = EncoderConfig(channels=(4,) * 11)
    rng = np.random.default_rng(0)
    blocks = [(0.2 * rng.normal(size=(3, 59049)) + 0.05).astype(np.float32) for _ in range(4)]
    ckpt = random_encoder_checkpoint(iter(blocks), config, seed=5, max_windows=10, batch_size=4)
    # Two full batches of 4; the short third batch would be over-weighted, so it is dropped.
    assert ckpt.extra["trained"] is False and ckpt.extra["bn_calibration_windows"] == 8
    assert (ckpt.source, ckpt.step) == ("clmr-embed", 0)  # export marks this as untrained
    model = SampleCNN(config).eval()
    assert ckpt.encoder_state is not None
    model.load_state_dict(ckpt.encoder_state)
    x = torch.from_numpy(np.concatenate(blocks)[:8, None])
    with torch.no_grad():
        first: Any = model.sequential[0]
        normed = first[1](first[0](x))  # first conv + BN, eval mode
    # Running stats are the cumulative statistics of the 8 windows: output ~ N(0, 1).
    torch.testing.assert_close(normed.mean((0, 2)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(normed.var((0, 2)), torch.ones(4), atol=1e-2, rtol=0)
    again = random_encoder_checkpoint(iter(blocks), config, seed=5, max_windows=10, batch_size=4)
    torch.testing.assert_close(again.encoder_state, ckpt.encoder_state)
    other = random_encoder_checkpoint(iter(blocks), config, seed=6, max_windows=10, batch_size=4)
    assert other.encoder_state is not None
    assert not torch.equal(
        other.encoder_state["sequential.0.0.weight"], ckpt.encoder_state["sequential.0.0.weight"]
    )
    save_checkpoint(tmp_path / "random.pt", ckpt)
    assert load_checkpoint(tmp_path / "random.pt").extra["trained"] is False
    with pytest.raises(DataError, match="at least 2"):
        random_encoder_checkpoint(iter(blocks[:1]), config, max_windows=1)

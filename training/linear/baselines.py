"""Linear-evaluation baselines: MFCC statistics, and random SampleCNN with calibrated BatchNorm."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from clmr_embed.audio import frame, load_audio
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import DataError
from training.checkpoint import Checkpoint
from training.config import EncoderConfig
from training.linear.features import Features
from training.samplecnn import SampleCNN

N_FFT = 2048  # 93 ms at 22.05 kHz, the usual MFCC frame
HOP = 512  # 23 ms frame hop: 112 frames per 59049-sample window
N_MELS = 128  # mel bands before the DCT
DELTA_WIDTH = 9  # frames in the delta regression (librosa's default)


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular HTK-mel filters from 0 Hz to Nyquist, float64 [n_mels, n_fft // 2 + 1]."""
    top_mel = 2595.0 * np.log10(1.0 + sample_rate / 2.0 / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(0.0, top_mel, n_mels + 2) / 2595.0) - 1.0)
    bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters: np.ndarray = np.maximum(0.0, np.minimum(rising, falling))
    return filters


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows, float64 [n_out, n_in] (scipy.fft.dct(norm="ortho") as a matrix)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    dct: np.ndarray = basis
    return dct


def deltas(frames: np.ndarray, width: int = DELTA_WIDTH) -> np.ndarray:
    """Regression deltas along the last axis (frames), edges padded by repetition."""
    half = width // 2
    padded = np.pad(frames, [(0, 0)] * (frames.ndim - 1) + [(half, half)], mode="edge")
    length = frames.shape[-1]
    weights = np.arange(1, half + 1)
    diff = sum(
        w * (padded[..., half + w : half + w + length] - padded[..., half - w : half - w + length])
        for w in weights
    )
    slope: np.ndarray = diff / (2.0 * np.sum(weights**2))
    return slope


def mfcc_window_features(
    windows: npt.ArrayLike, sample_rate: int = SAMPLE_RATE, n_mfcc: int = 20
) -> npt.NDArray[np.float32]:
    """Mean and std over frames of MFCCs and their deltas, per window.

    Args:
        windows: float32 [n, window_samples] audio windows.
        sample_rate: their sample rate in Hz.
        n_mfcc: coefficients kept (20-40 is usual).

    Returns:
        float32 [n, 4 * n_mfcc]: mean MFCC, std MFCC, mean delta, std delta.
    """
    x = np.asarray(windows, dtype=np.float32)
    mel, dct = mel_filterbank(sample_rate).T, dct_matrix(n_mfcc, N_MELS).T
    out = []
    for chunk in np.array_split(x, max(1, len(x) // 16)):  # ~30 MB of spectra per chunk
        frames = np.lib.stride_tricks.sliding_window_view(chunk, N_FFT, axis=-1)[:, ::HOP]
        power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=-1)) ** 2  # [n, frames, bins]
        mfcc = (np.log(power @ mel + 1e-10) @ dct).transpose(0, 2, 1)  # [n, n_mfcc, frames]
        delta = deltas(mfcc)
        stats = (mfcc.mean(-1), mfcc.std(-1), delta.mean(-1), delta.std(-1))
        out.append(np.concatenate(stats, axis=1))
    return np.concatenate(out).astype(np.float32)


def audio_windows(
    paths: Sequence[Path],
    sample_rate: int = SAMPLE_RATE,
    window: int = WINDOW_SAMPLES,
    hop: int | None = None,
    per_file: int | None = None,
) -> Iterator[npt.NDArray[np.float32]]:
    """Decoded windows of each file in turn, float32 [n_i, window] (CLMR tail policy).

    `per_file` keeps at most that many windows of a file, evenly spaced (for BN calibration).
    """
    for path in paths:
        samples, _ = load_audio(Path(path), sample_rate)
        windows = frame(samples, window, hop or window).windows
        if per_file is not None and len(windows) > per_file:
            windows = windows[np.linspace(0, len(windows) - 1, per_file).round().astype(int)]
        yield np.ascontiguousarray(windows, dtype=np.float32)


def mfcc_features(
    paths: Sequence[Path],
    sample_rate: int = SAMPLE_RATE,
    window: int = WINDOW_SAMPLES,
    hop: int | None = None,
    n_mfcc: int = 20,
) -> Features:
    """MFCC-statistics features per window of each file (the hand-crafted baseline).

    Windows are cut as for the encoder (non-overlapping by default), so the head sees the same
    number of windows per clip as with learned embeddings.
    """
    return Features(
        tuple(
            mfcc_window_features(w, sample_rate, n_mfcc)
            for w in audio_windows(paths, sample_rate, window, hop)
        )
    )


def _batches(windows_iter: Iterable[np.ndarray], size: int, limit: int) -> Iterator[torch.Tensor]:
    pending: list[np.ndarray] = []
    seen = 0
    for block in windows_iter:
        for row in np.asarray(block, dtype=np.float32).reshape(-1, block.shape[-1]):
            if seen >= limit:
                break
            pending.append(row)
            seen += 1
            if len(pending) == size:
                yield torch.from_numpy(np.stack(pending))[:, None, :]
                pending = []
        if seen >= limit:
            break
    # momentum=None weighs batches equally, so a short last batch is used only if it is the only
    # one; a batch of one has no statistics at the last block (length 1).
    if len(pending) > 1 and seen == len(pending):
        yield torch.from_numpy(np.stack(pending))[:, None, :]


def recalibrate_batchnorm(
    model: nn.Module,
    windows_iter: Iterable[np.ndarray],
    max_windows: int = 512,
    batch_size: int = 16,
) -> int:
    """Replace BatchNorm running statistics by their cumulative average over data windows.

    Train-mode forward passes under no_grad with momentum=None (an exact running mean over
    batches), as torch.optim.swa_utils.update_bn. Returns the number of windows used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    used = 0
    with torch.no_grad():
        for windows in _batches(windows_iter, batch_size, max_windows):
            model(windows)
            used += len(windows)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return used


def random_encoder_checkpoint(
    windows_iter: Iterable[np.ndarray],
    config: EncoderConfig | None = None,
    seed: int = 0,
    max_windows: int = 512,
    batch_size: int = 16,
) -> Checkpoint:
    """A seeded random-init SampleCNN whose BatchNorm statistics are recalibrated on data.

    Without recalibration the untrained network's activations collapse or explode with depth,
    making the baseline a strawman; with it, it is the usual "random features" baseline.

    Args:
        windows_iter: float32 [n, window] blocks (e.g. `audio_windows(paths, per_file=4)`).
        config: encoder shape (CLMR's by default).
        seed: torch seed of the initialisation.
        max_windows: windows used for the statistics.
        batch_size: windows per forward pass.

    Raises:
        DataError: fewer than two windows were available.
    """
    config = config or EncoderConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SampleCNN(config)
    used = recalibrate_batchnorm(model, windows_iter, max_windows, batch_size)
    if used < 2:
        raise DataError("BatchNorm calibration needs at least 2 audio windows; got fewer")
    return Checkpoint(
        encoder_config=config,
        encoder_state={k: v.detach().clone() for k, v in model.state_dict().items()},
        train_config={"baseline": "random", "seed": seed, "bn_calibration_windows": used},
        extra={
            "trained": False,
            "bn_calibration_windows": used,
            "note": f"random init (seed {seed}), BatchNorm statistics calibrated on {used} windows",
        },
        # export.api marks a "clmr-embed" checkpoint with step 0 as untrained; keep it that way.
        source="clmr-embed",
        step=0,
    )

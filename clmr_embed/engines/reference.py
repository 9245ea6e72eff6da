"""The first-use check's reference windows: a few real-music windows shipped as package data.

reference_windows.npz holds 12 windows of 16-bit PCM at 22.05 kHz (~1.4 MB) cut from the Debian
package fretsonfire-songs-sectoid (songs and guitar stems, (c) 2006/2007 Carlos Viola Iborra, MIT
licence, the same terms as clmr-embed's code). That package is held out of the default model's
training and calibration (configs/free-music-holdout.txt) and is not among the songs a quality
gate scores. The windows are spread over loudness, quiet ones included: low precisions fail
first where the signal is small. Rebuild with `build_reference` (tools.precision does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.atomic import atomic_path
from clmr_embed.audio import frame, load_audio, resample
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import DataError, ModelArtifactError

FILE_NAME = "reference_windows.npz"
LICENCE = "fretsonfire-songs-sectoid (Debian), (c) 2006/2007 Carlos Viola Iborra, MIT licence"
INT16_SCALE = 32767.0  # float [-1, 1] <-> int16 PCM


@dataclass(frozen=True)
class ReferenceWindows:
    """Audio the first-use check runs through a candidate path and through fp32."""

    audio: npt.NDArray[np.int16]  # (n, samples) 16-bit PCM clips at sample_rate
    sample_rate: int  # Hz of the clips
    sources: tuple[str, ...]  # "file.ogg@start_s" of each clip
    licence: str  # where the audio comes from and its terms

    def windows(self, sample_rate: int, window_samples: int) -> npt.NDArray[np.float32]:
        """float32 (n, window_samples) model windows: each clip at `sample_rate`, its first
        window (zero-padded when the clip is shorter), so any model's check has n windows."""
        out = np.zeros((len(self.audio), window_samples), np.float32)
        for i, clip in enumerate(self.audio):
            signal = clip.astype(np.float32) / INT16_SCALE
            if sample_rate != self.sample_rate:
                signal = resample(signal, self.sample_rate, sample_rate)
            out[i] = frame(signal, window_samples, window_samples).windows[0]
        return out


def reference_path() -> Path:
    """The shipped reference_windows.npz."""
    return Path(str(resources.files("clmr_embed.engines").joinpath(FILE_NAME)))


def load_reference(path: Path | None = None) -> ReferenceWindows:
    """Read reference windows (the shipped file by default).

    Raises:
        ModelArtifactError: the file is missing or not a reference-windows file.
    """
    path = path or reference_path()
    try:
        with np.load(path, allow_pickle=False) as data:
            return ReferenceWindows(
                audio=np.asarray(data["audio"], dtype=np.int16),
                sample_rate=int(data["sample_rate"]),
                sources=tuple(str(s) for s in data["sources"]),
                licence=str(data["licence"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise ModelArtifactError(
            f"reference windows {path} are missing or unreadable ({exc}); reinstall clmr-embed"
        ) from None


def _loudness_picks(count: int, n_files: int) -> list[tuple[int, float]]:
    """(file index, loudness quantile) of each window: files in turn, quantiles low to high."""
    quantiles = np.linspace(0.02, 0.98, count)
    return [(k % n_files, float(q)) for k, q in enumerate(quantiles)]


def build_reference(files: Sequence[Path], out: Path, count: int = 12) -> Path:
    """Write `count` windows from `files` to `out` (an .npz), spread over files and loudness.

    Window k comes from file k mod len(files), at the k-th of `count` evenly spaced RMS
    quantiles of that file's back-to-back windows (so quiet passages are in the set).
    """
    if not files:
        raise DataError("build_reference needs at least one audio file")
    clips, sources = [], []
    decoded = [load_audio(Path(p), SAMPLE_RATE)[0] for p in files]
    for index, quantile in _loudness_picks(count, len(files)):
        windows = frame(decoded[index], WINDOW_SAMPLES, WINDOW_SAMPLES).windows
        rms = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=1))
        pick = int(np.argsort(rms, kind="stable")[round(quantile * (len(rms) - 1))])
        clip = np.clip(np.round(windows[pick] * INT16_SCALE), -32768, 32767).astype(np.int16)
        clips.append(clip)
        sources.append(f"{Path(files[index]).name}@{pick * WINDOW_SAMPLES / SAMPLE_RATE:.2f}s")
    with atomic_path(out) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            audio=np.stack(clips),
            sample_rate=np.int64(SAMPLE_RATE),
            sources=np.array(sources),
            licence=np.array(LICENCE),
        )
    return out

"""Real-music windows for int8 calibration, and a held-aside set to choose the float blocks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from onnxruntime.quantization import CalibrationDataReader

from clmr_embed.artifact import AUDIO
from clmr_embed.audio import frame, load_audio
from clmr_embed.errors import ConfigError, DataError
from clmr_embed.scan import find_audio_files

BATCH = 8  # windows per calibration run: onnxruntime holds ~0.5 GB of activations per batch
GOLDEN = (5**0.5 - 1) / 2  # i * GOLDEN mod 1 spreads any prefix of i evenly over [0, 1)

Windows = npt.NDArray[np.float32]


@dataclass(frozen=True)
class CalibrationConfig:
    """Which real music calibrates the activation ranges (never the songs a gate scores)."""

    directory: Path  # music folder, searched recursively
    windows: int = 256  # windows fed to the calibrator
    check_windows: int = 64  # further windows, of other files, that choose the float blocks
    per_file: int = 8  # at most this many windows of one file, evenly spaced over it
    exclude: tuple[str, ...] = ()  # glob patterns (relpath or name) of files never used


@dataclass(frozen=True)
class CalibrationSet:
    """Windows cut from the calibration folder."""

    windows: Windows  # (n, window) float32: the calibrator's input
    check: Windows  # (m, window) float32 from files not in `windows`
    files: tuple[Path, ...]  # the files read, calibration files first


def calibration_files(config: CalibrationConfig) -> list[Path]:
    """The folder's audio files in reading order: any prefix of the list is spread evenly over
    the sorted files (a golden-ratio sequence), so a few files still cover many albums."""
    if min(config.windows, config.check_windows, config.per_file) <= 0:
        raise ConfigError(
            f"calibration windows ({config.windows}), check_windows ({config.check_windows}) "
            f"and per_file ({config.per_file}) must be > 0"
        )
    found = [f.path for f in find_audio_files([config.directory], exclude=config.exclude)]
    if not found:
        raise DataError(f"no audio files under {config.directory}; pass a folder of music")
    order = np.argsort((np.arange(len(found)) * GOLDEN) % 1.0, kind="stable")
    return [found[i] for i in order]


def file_windows(path: Path, sample_rate: int, window_samples: int, per_file: int) -> Windows:
    """`per_file` windows evenly spaced over a file's back-to-back windows, first and last
    included (intros and endings are where quiet passages are)."""
    samples, _ = load_audio(path, sample_rate)
    windows = frame(samples, window_samples, window_samples).windows
    picks = np.linspace(0, len(windows) - 1, min(per_file, len(windows))).round().astype(int)
    return np.asarray(windows[picks], dtype=np.float32)


def calibration_set(
    config: CalibrationConfig, sample_rate: int, window_samples: int
) -> CalibrationSet:
    """Read files in `calibration_files` order: the first fill `windows`, the next `check`.

    Raises:
        DataError: the folder holds too little audio for both sets.
    """
    sets: list[list[Windows]] = [[], []]
    wanted = (config.windows, config.check_windows)
    files: list[Path] = []
    for path in calibration_files(config):
        part = 0 if sum(len(w) for w in sets[0]) < wanted[0] else 1
        if sum(len(w) for w in sets[1]) >= wanted[1]:
            break
        sets[part].append(file_windows(path, sample_rate, window_samples, config.per_file))
        files.append(path)
    if not sets[1]:
        raise DataError(
            f"{config.directory} holds too little audio for {config.windows} calibration and "
            f"{config.check_windows} check windows; pass a larger folder or ask for fewer"
        )
    calibration, check = (np.concatenate(s)[:n] for s, n in zip(sets, wanted, strict=True))
    return CalibrationSet(calibration, check, tuple(files))


class WindowReader(CalibrationDataReader):
    """Feeds calibration windows to onnxruntime's calibrator in equal batches.

    onnxruntime calibrates one `set_range` slice at a time (its CalibStridedMinMax option), so
    memory holds one batch's intermediate tensors, not all of them. The histogram calibrators
    stack the batches, so all have one size: a ragged tail is left out.
    """

    def __init__(self, windows: Windows, batch: int = BATCH) -> None:
        batch = max(1, min(batch, len(windows)))
        self._batches = [windows[i : i + batch] for i in range(0, len(windows) - batch + 1, batch)]
        self._next, self._end = 0, len(self._batches)

    def __len__(self) -> int:
        return len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Serve batches [start_index, end_index) next."""
        self._next, self._end = start_index, min(end_index, len(self._batches))

    def get_next(self) -> dict[str, Windows] | None:
        """The next {"audio": (batch, 1, window)} input, None at the end of the range."""
        if self._next >= self._end:
            return None
        self._next += 1
        return {AUDIO: np.ascontiguousarray(self._batches[self._next - 1][:, None, :])}

"""What the extract run and its decode workers send each other: jobs out, typed results back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from clmr_embed.audio import DecodedFile, WindowSpec


@dataclass(frozen=True)
class DecodeJob:
    """One file to decode and cut into windows."""

    index: int  # position in the extract plan, echoed in every message (as `job`)
    path: str  # absolute path of the audio file
    spec: WindowSpec  # the model's rate and window, and the run's hop
    decoder: str = "av"  # "av" (PyAV/FFmpeg) or "soundfile" (libsndfile)
    chunk_windows: int = 64  # windows per message: bounds memory for hours-long files


# NamedTuples: cheap to pickle through a worker's pipe, and typed at both ends.
class Started(NamedTuple):
    """A worker process took a job (sent before decoding, so a crash can be blamed on it)."""

    job: int  # the DecodeJob's index
    pid: int


class Windows(NamedTuple):
    """The next windows of a file, in order."""

    job: int  # the DecodeJob's index
    windows: npt.NDArray[np.float32]  # (k, window)
    starts: npt.NDArray[np.int64]  # (k,) sample offsets of the windows


class WindowsIn(NamedTuple):
    """Windows a worker wrote into a shared-memory block (extract/handover.py); the pool turns it
    back into Windows on arrival, so nothing past the pool sees one."""

    job: int  # the DecodeJob's index
    block: int  # which of the worker's blocks holds them
    n_windows: int  # windows in the block
    window: int  # samples per window
    starts: npt.NDArray[np.int64]  # (n_windows,) sample offsets of the windows


class Decoded(NamedTuple):
    """A file is fully decoded: every window of it was sent."""

    job: int  # the DecodeJob's index
    file: DecodedFile  # duration, source rate and channels, short/silent


class Failed(NamedTuple):
    """A file could not be decoded; no more messages come for it."""

    job: int  # the DecodeJob's index
    reason: str  # one line naming the file


Message = Started | Windows | Decoded | Failed

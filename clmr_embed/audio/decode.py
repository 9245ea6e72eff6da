"""Decode audio files to mono float32 at a target rate: PyAV or libsndfile, channel mean, soxr."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from clmr_embed.audio.decoders import (
    AudioInfo,
    DecodeReport,
    Opened,
    open_av,
    open_soundfile,
    reason,
)
from clmr_embed.audio.resample import (
    RESAMPLE_QUALITY,
    Samples,
    check_rate,
    rechunk,
    resample_chunks,
)
from clmr_embed.choices import Decoder
from clmr_embed.errors import AudioDecodeError, ClmrEmbedError, ConfigError
from clmr_embed.names import shown

DECODERS = tuple(d.value for d in Decoder)  # PyAV/FFmpeg (every format), libsndfile
_CHUNK_SECONDS = 2.0  # source audio checked and resampled per step


class DecodedBlocks(Iterator[Samples]):
    """The lazily decoded mono blocks of one file, and (once consumed) what the decoder met."""

    def __init__(self, blocks: Iterator[Samples], report: DecodeReport) -> None:
        self._blocks = blocks
        self.report = report  # damaged packets skipped, an early stop, captured decoder notes

    def __next__(self) -> Samples:
        return next(self._blocks)

    def close(self) -> None:
        """Stop decoding and close the file (also done when the blocks run out)."""
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()


def stream_audio(
    path: Path, sample_rate: int, *, block_seconds: float = 30.0, decoder: str = "av"
) -> tuple[AudioInfo, DecodedBlocks]:
    """Open `path` now and return its info and a lazy iterator of mono blocks at `sample_rate`.

    Memory stays bounded by a few blocks whatever the file's length: decoding, the channel-mean
    downmix and the soxr resampling all run block by block. A damaged packet is skipped and
    counted (`blocks.report.gaps`); a container that breaks off ends the audio there
    (`blocks.report.stopped`), so a cut-short file still gives the audio it holds.

    Args:
        path: an audio file in any format the decoder reads.
        sample_rate: output rate in Hz.
        block_seconds: length of each yielded block; the last one may be shorter.
        decoder: "av" (PyAV/FFmpeg, every format) or "soundfile" (libsndfile).

    Returns:
        (info, blocks): blocks are float32 [n] at `sample_rate`.

    Raises:
        AudioDecodeError: now for open/probe errors, during iteration for decode errors, NaN/inf
            samples, a file without samples or one whose packets are mostly damaged. No other
            exception escapes for a bad file.
        ConfigError: for a bad `sample_rate`, `block_seconds` or `decoder`.
    """
    if sample_rate <= 0 or not block_seconds > 0:
        raise ConfigError(
            f"sample_rate ({sample_rate}) and block_seconds ({block_seconds}) must be > 0"
        )
    path = Path(path)
    opened = _open(path, decoder)
    out_block = max(1, round(block_seconds * sample_rate))
    # Resampling in short chunks keeps the peak memory near two output blocks.
    in_block = max(1, round(min(block_seconds, _CHUNK_SECONDS) * opened.info.source_rate))
    blocks = _guarded(path, opened, in_block, sample_rate, out_block)
    return opened.info, DecodedBlocks(blocks, opened.report)


def load_audio(path: Path, sample_rate: int, *, decoder: str = "av") -> tuple[Samples, AudioInfo]:
    """Decode a whole file to mono float32 [n] at `sample_rate`; see `stream_audio`."""
    info, blocks = stream_audio(path, sample_rate, decoder=decoder)
    return np.concatenate(list(blocks)), info


def probe(path: Path, decoder: str = "av") -> AudioInfo:
    """Read a file's header only; raises AudioDecodeError as `stream_audio` does."""
    opened = _open(Path(path), decoder)
    opened.close()
    return opened.info


def to_mono(samples: npt.ArrayLike) -> Samples:
    """Downmix [n] or [n, channels] (soundfile layout) by the channel mean; float32 [n] out."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        return data
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioDecodeError(f"samples of shape {data.shape} are not [n] or [n, channels]")
    mono: Samples = data.mean(axis=1, dtype=np.float32)
    return mono


def preprocessing_info(decoder: str = "av") -> dict[str, str]:
    """The decoder, resampler and downmix that produced the audio, recorded with every store."""
    if decoder == "av":
        version = f"PyAV {av.__version__} / FFmpeg {av.ffmpeg_version_info}"
    elif decoder == "soundfile":
        version = f"soundfile {sf.__version__} / libsndfile {sf.__libsndfile_version__}"
    else:
        raise ConfigError(_decoder_message(decoder))
    return {
        "decoder": version,
        "resampler": f"soxr {soxr.__version__}",
        "quality": RESAMPLE_QUALITY,
        "downmix": "channel mean",
    }


def _open(path: Path, decoder: str) -> Opened:
    if decoder not in DECODERS:
        raise ConfigError(_decoder_message(decoder))
    if not path.is_file():
        raise AudioDecodeError(f"{shown(path)}: no such file; check the path")
    opened = open_av(path) if decoder == "av" else open_soundfile(path)
    try:
        check_rate(opened.info.source_rate, shown(path))
    except AudioDecodeError:
        opened.close()
        raise
    return opened


# --- the shared pipeline: check, re-block, resample, re-block (resample.py) ---


def _guarded(
    path: Path, opened: Opened, in_block: int, rate: int, out_block: int
) -> Iterator[Samples]:
    """Run the pipeline, turning any decoder failure into one AudioDecodeError naming the file."""
    try:
        total = 0
        for block in rechunk(resample_chunks(path, opened.chunks, in_block, rate), out_block):
            total += block.size
            yield block
        _check_decoded(path, opened.report, total)
    except ClmrEmbedError:
        raise
    except Exception as exc:  # any error: one bad file must never raise anything but ours
        fix = "the file is corrupt or cut short, re-encode it"
        raise AudioDecodeError(f"{shown(path)}: decoding failed ({reason(exc)}); {fix}") from exc
    finally:
        opened.close()  # also when the consumer stops early (GeneratorExit)


def _check_decoded(path: Path, report: DecodeReport, total: int) -> None:
    """After the last block: a file that gave no samples, or mostly damaged packets, fails."""
    if total == 0 and report.stopped:
        fix = "the file is corrupt or cut short, re-encode it"
        raise AudioDecodeError(f"{shown(path)}: decoding failed ({report.stopped}); {fix}")
    if total == 0:
        note = f" ({report.notes[0]})" if report.notes else ""
        raise AudioDecodeError(
            f"{shown(path)}: contains no audio samples (empty or zero-length){note}"
        )
    if report.gaps * 2 > report.packets:
        raise AudioDecodeError(
            f"{shown(path)}: {report.gaps} of {report.packets} packets could not be decoded; "
            "the file is corrupt, re-encode it"
        )


def _decoder_message(decoder: str) -> str:
    return f"unknown audio decoder {decoder!r}; use one of {', '.join(DECODERS)}"

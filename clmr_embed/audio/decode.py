"""Decode audio files to mono float32 at a target rate: PyAV or libsndfile, channel mean, soxr."""

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from clmr_embed.audio.resample import (
    RESAMPLE_QUALITY,
    Samples,
    check_rate,
    rechunk,
    resample_chunks,
)
from clmr_embed.errors import AudioDecodeError, ConfigError

DECODERS = ("av", "soundfile")  # PyAV/FFmpeg (every format), libsndfile
# Full scale of integer PCM, to map decoded integers onto [-1, 1) as FFmpeg and libsndfile do.
_INT_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}

_CHUNK_SECONDS = 2.0  # source audio checked and resampled per step


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before decoding."""

    source_rate: int  # Hz of the decoded stream
    channels: int  # channels before the downmix
    duration_s: float  # from the stream/container header; NaN when it does not say
    codec: str  # FFmpeg codec name, or libsndfile "FORMAT/SUBTYPE"
    decoder: str  # "av" or "soundfile"


def stream_audio(
    path: Path, sample_rate: int, *, block_seconds: float = 30.0, decoder: str = "av"
) -> tuple[AudioInfo, Iterator[Samples]]:
    """Open `path` now and return its info and a lazy iterator of mono blocks at `sample_rate`.

    Memory stays bounded by a few blocks whatever the file's length: decoding, the channel-mean
    downmix and the soxr resampling all run block by block.

    Args:
        path: an audio file in any format the decoder reads.
        sample_rate: output rate in Hz.
        block_seconds: length of each yielded block; the last one may be shorter.
        decoder: "av" (PyAV/FFmpeg, every format) or "soundfile" (libsndfile).

    Returns:
        (info, blocks): blocks are float32 [n] at `sample_rate`.

    Raises:
        AudioDecodeError: now for open/probe errors, during iteration for decode errors, NaN/inf
            samples or a file without samples.
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
    return opened.info, _guarded(path, opened, in_block, sample_rate, out_block)


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
    return data.mean(axis=1, dtype=np.float32)


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


# --- the two decoders ---


@dataclass(frozen=True)
class _Opened:
    """An open file: its header info, its lazily decoded chunks, and how to close it."""

    info: AudioInfo
    chunks: Iterator[tuple[int, Samples]]  # (source rate, mono float32 chunk at that rate)
    close: Callable[[], None]


def _open(path: Path, decoder: str) -> _Opened:
    if decoder not in DECODERS:
        raise ConfigError(_decoder_message(decoder))
    if not path.is_file():
        raise AudioDecodeError(f"{path}: no such file; check the path")
    opened = _open_av(path) if decoder == "av" else _open_soundfile(path)
    try:
        check_rate(opened.info.source_rate, str(path))
    except AudioDecodeError:
        opened.close()
        raise
    return opened


def _open_av(path: Path) -> _Opened:
    try:
        # Tags are never used; "replace" keeps a mis-encoded title (ID3 says UTF-8, bytes are
        # Latin-1) from failing the open of audio that decodes fine.
        container = av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, OSError) as exc:
        raise AudioDecodeError(
            f"{path}: not a readable audio file ({_reason(exc)}); check it or re-encode it"
        ) from exc
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError(f"{path}: has no audio stream; give an audio file")
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = math.nan
    info = AudioInfo(
        source_rate=int(stream.codec_context.sample_rate or 0),
        channels=int(stream.codec_context.channels),
        duration_s=duration,
        codec=stream.codec_context.name,
        decoder="av",
    )
    return _Opened(info, _decode_av(container, stream), container.close)


def _decode_av(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[tuple[int, Samples]]:
    for frame in container.decode(stream):
        data = frame.to_ndarray()
        # Planar frames are [channels, n]; packed ones interleave channels in one row.
        data = data if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels).T
        yield frame.sample_rate, _to_float(data).mean(axis=0, dtype=np.float32)


def _open_soundfile(path: Path) -> _Opened:
    try:
        handle = sf.SoundFile(path)
    except (sf.SoundFileError, OSError) as exc:
        raise AudioDecodeError(
            f"{path}: libsndfile cannot read it ({_reason(exc)}); use the av decoder"
        ) from exc
    info = AudioInfo(
        source_rate=handle.samplerate,
        channels=handle.channels,
        duration_s=handle.frames / handle.samplerate if handle.samplerate > 0 else math.nan,
        codec=f"{handle.format}/{handle.subtype}",
        decoder="soundfile",
    )
    return _Opened(info, _decode_soundfile(handle), handle.close)


def _decode_soundfile(handle: sf.SoundFile) -> Iterator[tuple[int, Samples]]:
    for block in handle.blocks(blocksize=16384, dtype="float32", always_2d=True):
        yield handle.samplerate, block.mean(axis=1, dtype=np.float32)


def _to_float(data: np.ndarray) -> npt.NDArray[np.float32]:
    """Map decoded PCM of any sample format onto float32 in [-1, 1]."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype in _INT_SCALE:
        return (data / _INT_SCALE[data.dtype]).astype(np.float32)
    return data.astype(np.float32, copy=False)


# --- the shared pipeline: check, re-block, resample, re-block (resample.py) ---


def _guarded(
    path: Path, opened: _Opened, in_block: int, rate: int, out_block: int
) -> Iterator[Samples]:
    """Run the pipeline, turning any decoder failure into one AudioDecodeError naming the file."""
    try:
        total = 0
        for block in rechunk(resample_chunks(path, opened.chunks, in_block, rate), out_block):
            total += block.size
            yield block
        if total == 0:
            raise AudioDecodeError(f"{path}: contains no audio samples (empty or zero-length)")
    except (av.FFmpegError, sf.SoundFileError, OSError) as exc:
        fix = "the file is corrupt or cut short, re-encode it"
        raise AudioDecodeError(f"{path}: decoding failed ({_reason(exc)}); {fix}") from exc
    finally:
        opened.close()  # also when the consumer stops early (GeneratorExit)


def _decoder_message(decoder: str) -> str:
    return f"unknown audio decoder {decoder!r}; use one of {', '.join(DECODERS)}"


def _reason(exc: Exception) -> str:
    """The first line of an exception, without the path FFmpeg repeats."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\] |Error opening '.*?': ", "", text)
    return text.split(": '")[0].rstrip(".")

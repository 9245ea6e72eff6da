"""The two decoders (PyAV/FFmpeg, libsndfile): open a file, decode it tolerating damaged frames."""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf

from clmr_embed.audio.frames import Frame, blocks, pcm
from clmr_embed.audio.resample import Samples
from clmr_embed.errors import AudioDecodeError, ClmrEmbedError
from clmr_embed.names import shown

# FFmpeg demuxers whose duration is an estimate from the bitrate, not a header field (raw ADTS
# AAC, AC-3, DTS, MPEG program/transport streams); MP3 is one too unless a Xing/Info/VBRI frame
# counts its frames. Only a stated duration can show that a file was cut short.
_ESTIMATED_DURATION = frozenset({"aac", "ac3", "eac3", "dts", "mpeg", "mpegts", "loas"})
_SOUNDFILE_BLOCK = 16384  # frames per libsndfile read
_RESYNCED = re.compile(r"Skipped \d+ bytes|resync", re.IGNORECASE)  # mpg123 jumped over damage


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before decoding."""

    source_rate: int  # Hz of the decoded stream
    channels: int  # channels before the downmix
    duration_s: float  # from the stream/container header; NaN when it does not say
    codec: str  # FFmpeg codec name, or libsndfile "FORMAT/SUBTYPE"
    decoder: str  # "av" or "soundfile"
    duration_stated: bool = True  # the header states duration_s (False: estimated from bitrate)


@dataclass
class DecodeReport:
    """What decoding met on the way; filled in while the chunks are consumed."""

    packets: int = 0  # compressed packets (PyAV) or blocks (libsndfile) read
    gaps: int = 0  # damaged packets skipped, or places where libsndfile's mp3 decoder resynced
    stopped: str = ""  # why decoding ended before the end of the file ("": it did not)
    notes: list[str] = field(default_factory=list)  # what the C decoder printed (captured)


@dataclass(frozen=True)
class Opened:
    """An open file: its header info, its lazily decoded chunks, and how to close it."""

    info: AudioInfo
    chunks: Iterator[tuple[int, Samples]]  # (source rate, mono float32 chunk at that rate)
    close: Callable[[], None]
    report: DecodeReport


def open_av(path: Path) -> Opened:
    """Open with PyAV/FFmpeg (every common format)."""
    try:
        # Tags are never used; "replace" keeps a mis-encoded title (ID3 says UTF-8, bytes are
        # Latin-1) from failing the open of audio that decodes fine.
        container = av.open(str(path), metadata_errors="replace")
    except Exception as exc:  # any error: whatever FFmpeg or PyAV raise, one line naming it
        raise AudioDecodeError(
            f"{shown(path)}: not a readable audio file ({reason(exc)}); check it or re-encode it"
        ) from exc
    try:
        info = _av_info(path, container)
    except BaseException:
        container.close()
        raise
    report = DecodeReport()
    chunks = _decode_av(container, container.streams.audio[0], report)
    return Opened(info, chunks, container.close, report)


def _av_info(path: Path, container: Any) -> AudioInfo:
    if not container.streams.audio:
        raise AudioDecodeError(f"{shown(path)}: has no audio stream; give an audio file")
    stream = container.streams.audio[0]
    codec = stream.codec_context
    if not codec.sample_rate or not codec.channels:  # random bytes that FFmpeg's probe accepted
        raise AudioDecodeError(
            f"{shown(path)}: not a valid {codec.name.upper()} stream (its header gives no sample "
            "rate or channels); the file is corrupt or not audio, re-encode it"
        )
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = math.nan
    formats = set(container.format.name.split(","))
    stated = not formats & _ESTIMATED_DURATION and ("mp3" not in formats or counts_frames(path))
    return AudioInfo(
        source_rate=int(codec.sample_rate),
        channels=int(codec.channels),
        duration_s=duration,
        codec=codec.name,
        decoder="av",
        duration_stated=stated and not math.isnan(duration),
    )


def _decode_av(container: Any, stream: Any, report: DecodeReport) -> Iterator[tuple[int, Samples]]:
    """Mono float32 blocks of FFmpeg frames (audio.frames), at their source rate."""
    return blocks(_av_frames(container, stream, report))


def _av_frames(container: Any, stream: Any, report: DecodeReport) -> Iterator[Frame]:
    """Decode packet by packet: a damaged packet is skipped (a gap), as FFmpeg's own tools do."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:  # the container is cut or garbled here: its audio ends
            report.stopped = reason(exc)
            return
        report.packets += 1
        try:
            frames = packet.decode()
        except av.FFmpegError:
            report.gaps += 1
            continue
        yield from map(pcm, frames)


def open_soundfile(path: Path) -> Opened:
    """Open with libsndfile (wav, flac, aiff, ogg, mp3), its stderr notes captured."""
    capture = StderrNotes()
    try:
        with capture:  # bytes: soundfile encodes a str path strictly (a Latin-1 name would fail)
            handle = sf.SoundFile(os.fsencode(path))
    except Exception as exc:  # any error: libsndfile's errors, and cffi's
        capture.close()
        raise AudioDecodeError(
            f"{shown(path)}: libsndfile cannot read it ({reason(exc)}); use the av decoder"
        ) from exc
    rate = handle.samplerate
    stated = handle.format != "MP3" or counts_frames(path)  # mpg123 estimates like FFmpeg
    info = AudioInfo(
        source_rate=rate,
        channels=handle.channels,
        duration_s=handle.frames / rate if rate > 0 else math.nan,
        codec=f"{handle.format}/{handle.subtype}",
        decoder="soundfile",
        duration_stated=stated and rate > 0,
    )
    report = DecodeReport(notes=capture.notes)

    def close() -> None:
        handle.close()
        capture.close()

    return Opened(info, _decode_soundfile(handle, capture, report), close, report)


def _decode_soundfile(
    handle: sf.SoundFile, capture: StderrNotes, report: DecodeReport
) -> Iterator[tuple[int, Samples]]:
    # Not handle.blocks(): on a file shorter than its header says, it pads the missing frames
    # with whatever its buffer held before (stale audio, silently wrong embeddings).
    while True:
        try:
            with capture:
                block = handle.read(_SOUNDFILE_BLOCK, dtype="float32", always_2d=True)
        except Exception as exc:  # any error: libsndfile stops here (e.g. FLAC lost sync)
            report.stopped = reason(exc)
            return
        report.packets += 1
        report.gaps = sum(_RESYNCED.search(note) is not None for note in report.notes)
        if not len(block):
            return
        yield handle.samplerate, block.mean(axis=1, dtype=np.float32)


class StderrNotes:
    """Capture what C code writes to file descriptor 2 while inside `with`, as `notes`.

    libsndfile's mp3 decoder (mpg123) prints "Note: Skipped 417 bytes in input." and the like
    straight to stderr, between the lines of a progress bar. Lines that look like decoder notes
    are kept here; anything else written meanwhile (another thread's output) is passed on.
    Use it from one thread at a time: fd 2 belongs to the whole process.
    """

    _NOTE = re.compile(r"^(Note|Warning|warning|Error|\[src/|\[.*mpg123)", re.IGNORECASE)

    def __init__(self) -> None:
        self.notes: list[str] = []
        self._file: Any = None
        self._saved = -1

    def __enter__(self) -> StderrNotes:
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile()
            sys.stderr.flush()
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except (OSError, ValueError):  # no fd 2 to capture (or out of fds): leave it be
            self._saved = -1
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved < 0:
            return
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = -1
        if self._file.tell():
            self._collect()

    def _collect(self) -> None:
        self._file.seek(0)
        text = self._file.read().decode("utf-8", "replace")
        self._file.seek(0)
        self._file.truncate()
        other = []
        for line in text.splitlines(keepends=True):
            if self._NOTE.match(line):
                self.notes.append(line.strip())
            else:
                other.append(line)
        if other:
            os.write(2, "".join(other).encode("utf-8", "replace"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def counts_frames(path: Path) -> bool:
    """True when an MPEG audio file's first frame is a Xing, Info or VBRI header.

    Those count the stream's frames, so the duration FFmpeg and mpg123 report is exact; without
    one it is file size / first bitrate, which is wrong for VBR and blind to a cut-short file.
    """
    try:
        with open(path, "rb") as handle:
            id3 = handle.read(10)
            if id3[:3] == b"ID3" and len(id3) == 10:  # skip the tag (syncsafe size, footer flag)
                size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(id3[6:10]))
                handle.seek(10 + size + (10 if id3[5] & 0x10 else 0))
            else:
                handle.seek(0)
            head = handle.read(8192)
    except OSError:
        return False
    sync = re.search(rb"\xff[\xe0-\xff]", head)  # the first frame header
    start = sync.start() if sync else len(head)
    return any(tag in head[start : start + 200] for tag in (b"Xing", b"Info", b"VBRI"))


def reason(exc: BaseException) -> str:
    """The first line of an exception, without the path FFmpeg repeats."""
    if isinstance(exc, ClmrEmbedError):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\] |Error opening b?'.*?': ", "", text)
    return shown(text.split(": '")[0].rstrip("."))

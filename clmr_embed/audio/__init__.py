"""Audio in: decode (PyAV or libsndfile), channel-mean downmix, soxr resampling, model windows."""

from clmr_embed.audio.decode import (
    DECODERS,
    DecodedBlocks,
    load_audio,
    preprocessing_info,
    probe,
    stream_audio,
    to_mono,
)
from clmr_embed.audio.decoders import AudioInfo
from clmr_embed.audio.resample import resample
from clmr_embed.audio.windows import (
    FLAGS,
    DecodedFile,
    Framed,
    Framer,
    WindowChunk,
    WindowSpec,
    WindowStream,
    frame,
    starts_seconds,
)

__all__ = [
    "DECODERS",
    "FLAGS",
    "AudioInfo",
    "DecodedBlocks",
    "DecodedFile",
    "Framed",
    "Framer",
    "WindowChunk",
    "WindowSpec",
    "WindowStream",
    "frame",
    "load_audio",
    "preprocessing_info",
    "probe",
    "resample",
    "starts_seconds",
    "stream_audio",
    "to_mono",
]

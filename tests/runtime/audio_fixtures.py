"""Writers of generated test audio (sines, arbitrary arrays) in every format the runtime decodes."""

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf

# Formats libsndfile writes; the rest are encoded with PyAV (FFmpeg).
_SOUNDFILE_FORMATS = {
    ".wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".aif": ("AIFF", "PCM_16"),
    ".aiff": ("AIFF", "PCM_16"),
}
# extension -> (container format, encoder, sample format the encoder accepts)
_AV_FORMATS = {
    ".mp3": ("mp3", "libmp3lame", "fltp"),
    ".m4a": ("ipod", "aac", "fltp"),
    ".aac": ("adts", "aac", "fltp"),
    ".opus": ("ogg", "libopus", "flt"),
}
AUDIO_FORMATS = tuple(sorted(_SOUNDFILE_FORMATS) + sorted(_AV_FORMATS))


def sine(
    freq: float, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    """A sine of `freq` Hz, the same in every channel.

    Returns:
        float32 [n, channels] with n = round(seconds * rate).
    """
    t = np.arange(round(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1)


def write_audio(path: Path, samples: npt.ArrayLike, rate: int, subtype: str | None = None) -> Path:
    """Write float samples [n] or [n, channels] in the format named by the extension of `path`.

    `subtype` overrides the libsndfile subtype (e.g. "PCM_16") for the soundfile formats.
    """
    data = np.asarray(samples, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data
    ext = path.suffix.lower()
    if ext in _SOUNDFILE_FORMATS:
        fmt, default_subtype = _SOUNDFILE_FORMATS[ext]
        sf.write(path, data, rate, format=fmt, subtype=subtype or default_subtype)
    elif ext in _AV_FORMATS:
        _write_av(path, data, rate)
    else:
        raise ValueError(f"no writer for {path.name}; use one of {AUDIO_FORMATS}")
    return path


def write_sine(
    path: Path, freq: float, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5
) -> Path:
    """Write a sine (see `sine`) to `path`, format chosen by its extension."""
    return write_audio(path, sine(freq, seconds, rate, channels, amplitude), rate)


def _write_av(path: Path, data: npt.NDArray[np.float32], rate: int) -> None:
    """Encode [n, channels] float32 with FFmpeg through PyAV."""
    container_fmt, codec, sample_fmt = _AV_FORMATS[path.suffix.lower()]
    layout = "mono" if data.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=container_fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        # Encoders take fixed-size frames; the resampler only re-blocks (same format, layout, rate).
        blocker = av.AudioResampler(sample_fmt, layout, rate, frame_size=1024)
        planar = sample_fmt.endswith("p")
        array = data.T.copy() if planar else data.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), sample_fmt, layout)
        frame.sample_rate = rate
        for chunk in blocker.resample(frame) + blocker.resample(None):
            chunk.pts = None
            container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))


def write_video_only(path: Path) -> Path:
    """Write a one-frame 16x16 video with no audio stream (e.g. `clip.mkv`)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        image = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(image.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    return path

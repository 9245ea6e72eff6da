"""The decoders on damaged files: cut short, holed, random bytes, VBR without a frame count."""

from __future__ import annotations

import os
import random
from pathlib import Path

import av
import numpy as np
import pytest

from clmr_embed.audio import WindowSpec, WindowStream, load_audio, stream_audio
from clmr_embed.audio.decode import _check_decoded
from clmr_embed.audio.decoders import DecodeReport, counts_frames
from clmr_embed.errors import AudioDecodeError
from tests.fixtures.audio import write_sine

SPEC = WindowSpec(8000, 2000, 2000)  # 0.25-s windows at 8 kHz


def _cut(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


def _decoded(path: Path, decoder: str = "av") -> tuple[float, tuple[str, ...]]:
    stream = WindowStream(path, SPEC, decoder=decoder)
    for _ in stream:
        pass
    return stream.decoded.duration_s, stream.decoded.flags


def _vbr_mp3(path: Path, xing: bool) -> Path:
    """4 s of silence, 8 s of noise, 4 s of silence, VBR: the first frame's bitrate lies."""
    rate = 44100
    rng = np.random.default_rng(0)
    signal = np.concatenate([np.zeros(rate * 4), rng.standard_normal(rate * 8) * 0.3])
    signal = np.concatenate([signal, np.zeros(rate * 4)]).astype(np.float32)
    signal = np.stack([signal, signal])
    with av.open(str(path), "w", format="mp3", options={"write_xing": str(int(xing))}) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.codec_context.qscale = 4  # type: ignore[assignment]  # global quality: libmp3lame VBR
        stream.codec_context.options = {"q": "2"}
        blocker = av.AudioResampler("fltp", "stereo", rate, frame_size=1152)
        frame = av.AudioFrame.from_ndarray(signal, "fltp", "stereo")
        frame.sample_rate = rate
        for chunk in blocker.resample(frame) + blocker.resample(None):
            chunk.pts = None
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return path


def test_random_bytes_named_flac_say_not_a_valid_flac_stream(tmp_path: Path) -> None:
    noise = tmp_path / "noise.flac"
    noise.write_bytes(random.Random(1).randbytes(5000))
    with pytest.raises(AudioDecodeError) as caught:
        load_audio(noise, 8000)
    assert "not a valid FLAC stream" in str(caught.value) and "0 Hz" not in str(caught.value)


@pytest.mark.parametrize("ext", [".flac", ".wav", ".mp3"])
def test_a_cut_short_file_keeps_its_audio_and_is_flagged_truncated(tmp_path: Path, ext: str):
    cut = _cut(write_sine(tmp_path / f"song{ext}", 440, 20.0, 8000), keep=0.25)
    duration, flags = _decoded(cut)  # a cut FLAC failed outright before
    assert duration == pytest.approx(5.0, abs=0.5) and "truncated" in flags


def test_whole_files_are_not_flagged(tmp_path: Path) -> None:
    for ext in (".flac", ".wav", ".mp3", ".m4a", ".ogg", ".opus"):
        rate = 48000 if ext == ".opus" else 8000
        duration, flags = _decoded(write_sine(tmp_path / f"song{ext}", 440, 3.0, rate))
        # lossy codecs add up to two frames of priming/padding (AAC: 2 x 1024 samples)
        assert flags == () and duration == pytest.approx(3.0, abs=0.3), ext


def test_libsndfile_gives_no_stale_audio_past_the_cut_of_an_mp3(tmp_path: Path) -> None:
    cut = _cut(write_sine(tmp_path / "song.mp3", 440, 20.0, 8000), keep=0.25)
    samples, info = load_audio(cut, 8000, decoder="soundfile")
    assert info.duration_s == pytest.approx(20.0, abs=0.1)  # the Xing header's
    # soundfile's blocks() once filled the missing 15 s with its previous buffer: a 440 Hz tone
    assert samples.size / 8000 < 6.0
    assert _decoded(cut, "soundfile")[1] == ("truncated",)


def test_mpg123_notes_are_captured_not_written_to_stderr(tmp_path: Path, capfd) -> None:
    cut = _cut(write_sine(tmp_path / "song.mp3", 440, 20.0, 8000), keep=0.25)
    _, blocks = stream_audio(cut, 8000, decoder="soundfile")
    for _ in blocks:
        pass
    assert capfd.readouterr().err == ""  # mpg123 printed "warning: Cannot read next header"
    assert blocks.report.notes  # "Xing stream size off", "[src/libmpg123/...] error: ..."
    assert all("mpg123" in note or "Xing" in note for note in blocks.report.notes)


def test_a_damaged_stretch_is_skipped_and_flagged_gaps(tmp_path: Path) -> None:
    whole = write_sine(tmp_path / "song.mp3", 440, 20.0, 8000).read_bytes()
    middle = len(whole) // 2
    holed = tmp_path / "holed.mp3"
    holed.write_bytes(whole[:middle] + bytes(600) + whole[middle + 600 :])
    duration, flags = _decoded(holed)
    assert "gaps" in flags and duration > 15.0  # the audio after the hole is there


def test_a_vbr_mp3_without_a_frame_count_is_not_called_truncated(tmp_path: Path) -> None:
    bare = _vbr_mp3(tmp_path / "bare.mp3", xing=False)
    counted = _vbr_mp3(tmp_path / "counted.mp3", xing=True)
    assert not counts_frames(bare) and counts_frames(counted)
    info, _ = stream_audio(bare, 8000)
    assert info.duration_s > 24 and not info.duration_stated  # estimated from 32 kbit/s
    assert _decoded(bare) == (pytest.approx(16.0, abs=0.2), ())
    assert _decoded(counted) == (pytest.approx(16.0, abs=0.2), ())


def test_a_foreign_exception_from_the_decoder_becomes_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 1.0, 8000)

    def broken_open(*args: object, **kwargs: object) -> None:
        raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")

    monkeypatch.setattr(av, "open", broken_open)
    with pytest.raises(AudioDecodeError, match="song.wav: not a readable audio file"):
        load_audio(song, 8000)


def test_mostly_damaged_or_empty_decodes_fail() -> None:
    _check_decoded(Path("ok.mp3"), DecodeReport(packets=100, gaps=3), total=8000)
    with pytest.raises(AudioDecodeError, match="60 of 100 packets"):
        _check_decoded(Path("bad.mp3"), DecodeReport(packets=100, gaps=60), total=8000)
    with pytest.raises(AudioDecodeError, match="decoding failed .lost sync"):
        _check_decoded(Path("bad.flac"), DecodeReport(stopped="lost sync"), total=0)


@pytest.mark.parametrize("decoder", ["av", "soundfile"])
def test_a_name_that_is_not_utf8_opens(tmp_path: Path, decoder: str) -> None:
    song = write_sine(tmp_path / "song.flac", 440, 1.0, 8000)
    latin1 = song.rename(tmp_path / os.fsdecode(b"caf\xe9.flac"))  # soundfile once refused it
    samples, _ = load_audio(latin1, 8000, decoder=decoder)
    assert samples.size == 8000
    missing = tmp_path / os.fsdecode(b"gon\xe9.flac")
    with pytest.raises(AudioDecodeError, match=r"gon\\xe9.flac: no such file"):
        load_audio(missing, 8000, decoder=decoder)

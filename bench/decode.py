"""Decode speed (x real time) of the PyAV and soundfile decoders, side by side.

Run: .venv/bin/python bench/decode.py [--repeats 3]. Reads /work/shared/audio (never copied).
"raw" is the library alone (PyAV frames -> ndarray, soundfile.read); "ours" is clmr_embed's
stream_audio at the source rate (decode + channel mean + checks) and at 22050 Hz (+ soxr HQ).
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import av
import soundfile as sf

from clmr_embed.audio import probe, stream_audio

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
SETS = {
    "mp3 stereo 22.05k, 1 x 184 s": [SHARED / "clmr_demo" / "john_lennon_imagine.mp3"],
    "mp3 mono 16k, 1 x 29 s": sorted((SHARED / "mtat_subset" / "audio").rglob("*.mp3")),
    "flac mono 22.05k, 100 x 15 s": sorted((SHARED / "gtzan_subset" / "audio").rglob("*.flac")),
    "flac mono 44.1k, 148 x 3 s": sorted(
        (SHARED / "medley_solos_subset" / "audio").rglob("*.flac")
    ),
}


def raw_av(path: Path) -> None:
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            frame.to_ndarray()


def raw_soundfile(path: Path) -> None:
    sf.read(path, dtype="float32")


def ours(decoder: str, rate: int | None) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        target = rate or probe(path, decoder).source_rate
        for _ in stream_audio(path, target, decoder=decoder)[1]:
            pass

    return run


def best_seconds(func: Callable[[Path], None], files: list[Path], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for path in files:
            func(path)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    modes = {
        "raw": (raw_av, raw_soundfile),
        "ours, source rate": (ours("av", None), ours("soundfile", None)),
        "ours, 22050 Hz": (ours("av", 22050), ours("soundfile", 22050)),
    }
    print(
        f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), "
        f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__})"
    )
    print(f"{'files':32} {'mode':18} {'PyAV xRT':>10} {'sndfile xRT':>12} {'sf/av':>7}")
    for name, files in SETS.items():
        if not files or not files[0].exists():
            print(f"{name:32} (missing, skipped)")
            continue
        audio_s = sum(sf.info(f).duration for f in files)
        for mode, (with_av, with_sf) in modes.items():
            av_s = best_seconds(with_av, files, args.repeats)
            sf_s = best_seconds(with_sf, files, args.repeats)
            print(
                f"{name:32} {mode:18} {audio_s / av_s:10.0f} {audio_s / sf_s:12.0f} "
                f"{av_s / sf_s:7.2f}"
            )


if __name__ == "__main__":
    main()

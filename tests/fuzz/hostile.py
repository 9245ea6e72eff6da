"""A seeded library of hostile inputs: damaged files of every container, odd names, odd paths.

Every case says what a run must do with it: `embedded` (no flags), `flagged` (embedded with
the given flags), `failed` (recorded in /errors), `skipped` (listed, nothing to embed), or
`any_outcome` (a damaged file: embedded, flagged or failed, but never a crash or a hang).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.clmr_embed.audio.test_bad_metadata import _mp3_with_lying_title
from tests.fixtures.audio import sine, write_audio, write_sine, write_video_only

# A container per entry: extension and the source rate it is written at (libopus: 48 kHz).
CONTAINERS = {".wav": 8000, ".flac": 8000, ".ogg": 8000, ".aiff": 8000, ".mp3": 8000,
              ".m4a": 8000, ".aac": 8000, ".opus": 48000}  # fmt: skip
SECONDS = 1.5  # of each generated file: enough for a few windows of the tiny model


@dataclass(frozen=True)
class Case:
    """One hostile path in the library and what a run must do with it."""

    relpath: str  # as the store and the summary name it (bytes that are not UTF-8 as \xNN)
    expect: str  # "embedded", "flagged", "failed", "skipped" or "any_outcome"
    flags: tuple[str, ...] = ()  # for "flagged": flags it must carry (at least these)


def build(root: Path, seed: int = 13) -> list[Case]:
    """Write the hostile library under `root` (created) and return its cases."""
    root.mkdir(parents=True)
    rng = random.Random(seed)
    cases = _damaged_containers(root, rng)
    cases += _bad_content(root, rng)
    cases += _odd_names_and_paths(root)
    return cases


def _damaged_containers(root: Path, rng: random.Random) -> list[Case]:
    """Per container: the whole file, two truncations, scattered bit flips, a burst of noise."""
    cases: list[Case] = []
    for ext, rate in CONTAINERS.items():
        whole = write_sine(root / f"whole{ext}", 220 + 110 * len(cases) % 660, SECONDS, rate)
        data = whole.read_bytes()
        cases.append(Case(whole.name, "embedded"))
        for label, keep in (("head", rng.uniform(0.02, 0.1)), ("half", rng.uniform(0.3, 0.7))):
            (root / f"cut_{label}{ext}").write_bytes(data[: int(len(data) * keep)])
            cases.append(Case(f"cut_{label}{ext}", "any_outcome"))
        flipped = bytearray(data)
        for _ in range(24):  # headers included: the nastiest place for a flipped bit
            position = rng.randrange(len(flipped))
            flipped[position] ^= 1 << rng.randrange(8)
        (root / f"flipped{ext}").write_bytes(bytes(flipped))
        cases.append(Case(f"flipped{ext}", "any_outcome"))
        start = rng.randrange(len(data) // 4, len(data) // 2)
        burst = data[:start] + rng.randbytes(min(400, len(data) // 8)) + data[start + 400 :]
        (root / f"burst{ext}").write_bytes(burst)
        cases.append(Case(f"burst{ext}", "any_outcome"))
    return cases


def _bad_content(root: Path, rng: random.Random) -> list[Case]:
    """Files whose audio is unusable or odd, in otherwise valid containers."""
    (root / "empty.wav").write_bytes(b"")
    (root / "noise.flac").write_bytes(rng.randbytes(5000))  # "not a valid FLAC stream"
    (root / "noise.mp3").write_bytes(rng.randbytes(5000))
    (root / "text.mp3").write_bytes(b"not audio at all\n" * 50)
    nan, inf = sine(440, SECONDS, 8000), sine(440, SECONDS, 8000)
    nan[100], inf[200] = np.nan, np.inf
    write_audio(root / "nan.wav", nan, 8000)
    write_audio(root / "inf.wav", inf, 8000)
    write_audio(root / "no_frames.wav", np.zeros((0, 1)), 8000)
    write_audio(root / "slow_rate.wav", np.zeros(500), 100)
    write_video_only(root / "video.mkv").rename(root / "video.mp4")  # no audio stream
    write_sine(root / "short.wav", 440, 0.05, 8000)
    write_audio(root / "silent.flac", np.zeros(int(SECONDS * 8000)), 8000)
    write_sine(root / "eight_channels.wav", 440, SECONDS, 8000, channels=8)
    write_sine(root / "rate_768k.wav", 440, 0.5, 768000)
    _mp3_with_lying_title(root / "lying_tag.mp3")  # ID3 says UTF-8, holds Latin-1
    (root / "lying_tag.raw.mp3").unlink()  # the helper's intermediate, tagless copy
    failed = ["empty.wav", "noise.flac", "noise.mp3", "text.mp3", "nan.wav", "inf.wav",
              "no_frames.wav", "slow_rate.wav", "video.mp4"]  # fmt: skip
    return [
        *(Case(name, "failed") for name in failed),
        Case("short.wav", "flagged", ("short",)),
        Case("silent.flac", "flagged", ("silent",)),
        Case("eight_channels.wav", "embedded"),
        Case("rate_768k.wav", "embedded"),
        Case("lying_tag.mp3", "embedded"),
    ]


def _odd_names_and_paths(root: Path) -> list[Case]:
    """Names that are not UTF-8 or hold escapes, and paths that are not files."""
    odd = root / "odd names"
    odd.mkdir()
    write_sine(odd / "latin1.wav", 500, SECONDS, 8000).rename(odd / os.fsdecode(b"caf\xe9.wav"))
    write_sine(odd / "clear\x1b[2J\nscreen.flac", 600, SECONDS, 8000)
    os.mkfifo(root / "pipe.wav")  # hashing it would block forever
    os.symlink(root / "gone.wav", root / "broken_link.wav")
    os.symlink(root, odd / "loop")
    return [
        Case("odd names/caf\\xe9.wav", "embedded"),
        Case("odd names/clear\x1b[2J\nscreen.flac", "embedded"),
        Case("pipe.wav", "skipped"),
        Case("broken_link.wav", "skipped"),
        Case("odd names/loop", "skipped"),
    ]

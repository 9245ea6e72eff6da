"""A tiny separable labelled set on disk: low tones ('hum') vs high-passed noise ('hiss')."""

from pathlib import Path

import numpy as np

from tests.fixtures.audio import write_audio

RATE = 22050
SPLITS = ("train",) * 5 + ("valid", "test", "test")  # per class: 5 train, 1 valid, 2 test


def write_clips(root: Path, seconds: float = 3.0) -> Path:
    """Write 16 wav clips and a manifest (path, labels, split); returns the manifest."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    rows = ["path,labels,split"]
    for i, split in enumerate(SPLITS):
        hum = 0.4 * np.sin(2 * np.pi * rng.uniform(60, 200) * t)
        hiss = np.diff(rng.standard_normal(len(t) + 1)) * 0.2
        for name, signal in (("hum", hum), ("hiss", hiss)):
            write_audio(root / f"{name}{i}.wav", signal.astype(np.float32), RATE)
            rows.append(f"{name}{i}.wav,{name},{split}")
    manifest = root / "labels.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest

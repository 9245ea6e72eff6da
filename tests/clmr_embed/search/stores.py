"""Stores the search and serve tests share: the real demo songs, and a tiny generated library."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.registry import DEFAULT_MODEL
from clmr_embed.scan import scan_inputs
from clmr_embed.store import TrackRecord, copy_store, open_store, open_writer
from clmr_embed.store.manifest import read_manifest, write_manifest
from tests.fixtures.audio import write_audio

ROOT = Path(__file__).resolve().parents[3]
TINY_RATE = 8000  # the tiny models' rate (tests/fixtures/models.py)


def require(module: str) -> None:
    """Skip without an optional module, except under CI=true, where its absence fails."""
    if os.environ.get("CI") == "true":
        __import__(module)
    else:
        pytest.importorskip(module)


def demo_store(shared_dir: Path, into: Path) -> Path:
    """The six demo songs embedded with the bundled model, as a fresh copy under `into`.

    Extracting them takes ~10 s of CPU; the store is kept (resumable, checked by extract
    itself) in the temp folder per checkout, so later sessions only re-hash the files (or
    embed them again once the bundled model has changed).
    """
    target = into / "demo.h5"
    if target.is_file():
        return target
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    kept = Path(tempfile.gettempdir()) / f"clmr-embed-tests-{key}" / "demo.h5"
    kept.parent.mkdir(parents=True, exist_ok=True)
    library = shared_dir / "audio" / "clmr_demo"
    # force: a store kept from before the bundled model changed is started afresh, not refused
    config = ExtractConfig(
        inputs=(library,), output=kept, model=DEFAULT_MODEL, threads=2, force=True
    )
    summary = run_extract(config).to_dict()
    assert summary["embedded"] + summary["unchanged"] == 6, summary
    into.mkdir(parents=True, exist_ok=True)
    copy_store(kept, target)
    return target


def tone(freq: float, seconds: float, seed: int) -> np.ndarray:
    """A tone with a little noise: distinct tracks whose embeddings are not all alike."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * TINY_RATE)) / TINY_RATE
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def tiny_library(folder: Path, n: int = 8) -> Path:
    """n wav tones of 1-4 s (several windows each of the tiny models) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_audio(folder / f"tone_{i:02d}.wav", tone(110 * (i + 1), 1 + i % 4, i), TINY_RATE)
    return folder


def extract(library: Path, store: Path, model: Path) -> Path:
    """Embed `library` into `store` with `model`, in-process."""
    config = ExtractConfig(inputs=(library,), output=store, model=str(model), workers=0)
    summary = run_extract(config)
    assert not summary.failed
    return store


def reembed(store: Path, relpath: str, seed: int = 0) -> None:
    """Commit new vectors for a stored track, its file and attributes unchanged (as a forced
    rerun with another precision does): only the store's generation shows the change."""
    with open_store(store) as opened:
        header, attrs = opened.header, opened.attrs(relpath)
        track_id = opened.track_ids[opened.paths.index(relpath)]
        embeddings, starts = opened.embeddings(relpath), opened.starts_s(relpath)
    noise = np.random.default_rng(seed).standard_normal(embeddings.shape).astype(np.float32)
    record = TrackRecord(
        track_id=track_id,
        relpath=relpath,
        content_sha256=attrs["content_sha256"],
        duration_s=attrs["duration_s"],
        source_rate=attrs["source_rate"],
        channels=attrs["channels"],
        embeddings=np.abs(embeddings + noise),
        starts_s=starts,
        flags=tuple(attrs["flags"]),
    )
    with open_writer(store, header) as writer:
        writer.add_track(record)


def forget_roots(store: Path) -> Path:
    """The store as one written before extract recorded library roots (none in its manifest)."""
    write_manifest(store, dataclasses.replace(read_manifest(store), roots=()))
    return store


def record_roots(store: Path, *inputs: Path) -> Path:
    """Record the roots a scan of `inputs` finds in the store, as extract's writer does."""
    with open_store(store) as opened:
        header = opened.header
    with open_writer(store, header) as writer:
        writer.record_roots(scan_inputs(list(inputs)).roots)
    return store

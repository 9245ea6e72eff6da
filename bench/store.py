"""Benchmark: commit time and bytes written per commit against store size (schema 2).

Not a test. For each size (one-window 512-d tracks) it builds a base store directly as
segments (what many commits plus merges leave), then times real StoreWriter commits of
--batch new tracks on top: the journal is written first (not timed, as in extract), then
commit() publishes a segment and a new manifest. The last of --commits commits triggers a
tail merge (FANOUT level-0 segments), shown as "merge commit". "copy s" is what schema 1 paid
per commit on top of the same work: a copy of the whole store file (shutil.copyfile, from
the page cache). "verify s" is extract's per-run damage scan: each segment's file hashed
against the sha256 its manifest entry records (tracks read one by one only where it differs);
"per-track verify s" is the same scan reading every track's arrays (what stores written before
segment digests pay, and what a changed segment costs), timed in the same run.
Usage: python bench/store.py [--sizes 1000 10000 100000] [--batch 200] [--commits 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from clmr_embed.store import StoreHeader, TrackRecord, open_store, open_writer
from clmr_embed.store.manifest import Manifest
from clmr_embed.store.published import FANOUT, PublishedStore, SegmentFiles

DIM = 512
HEADER = StoreHeader(
    model_name="bench",
    model_sha256="b" * 64,
    model_trained=False,
    sample_rate=22050,
    window_samples=59049,
    hop_samples=59049,
    embedding_dim=DIM,
    preprocessing={"decoder": "bench"},
)


def _track(i: int, prefix: str) -> TrackRecord:
    emb = np.random.default_rng(i).standard_normal((1, DIM)).astype(np.float32)
    return TrackRecord(f"{prefix}{i:07d}", f"lib/{prefix}{i:07d}.wav", f"sha{prefix}{i}",
                       2.7, 44100, 2, emb, np.zeros(1, np.float32))  # fmt: skip


def _attrs(record: TrackRecord) -> dict[str, object]:
    return {"relpath": record.relpath, "content_sha256": record.content_sha256,
            "duration_s": 2.7, "source_rate": 44100, "channels": 2, "n_windows": 1,
            "flags": [], "alias_of": ""}  # fmt: skip


def build_base(path: Path, size: int) -> float:
    """A store of `size` tracks written straight into segments; seconds it took."""
    began = time.perf_counter()
    store = PublishedStore(path, HEADER)
    with SegmentFiles(store.folder, 0, level=4) as files:
        for i in range(size):
            record = _track(i, "base")
            arrays = {"embeddings": record.embeddings, "starts_s": record.starts_s,
                      "mean": record.embeddings[0]}  # fmt: skip
            files.room().put_track(record.track_id, _attrs(record), arrays)
        built = files.finish()
    store.publish(Manifest(HEADER, generation=1, serial=files.serial, segments=tuple(built)), True)
    store.close()
    return time.perf_counter() - began


def store_bytes(path: Path) -> int:
    folder = path.with_name(path.name + ".d")
    return path.stat().st_size + sum(p.stat().st_size for p in folder.iterdir())


def measure(root: Path, size: int, batch: int, commits: int) -> dict[str, float]:
    path = root / f"s{size}.h5"
    build_s = build_base(path, size)
    os.sync()  # the base's dirty pages would otherwise slow the first commits' fsyncs
    total = store_bytes(path)
    copy = root / "copy.bin"
    began = time.perf_counter()
    for segment in path.with_name(path.name + ".d").glob("*.h5"):
        shutil.copyfile(segment, copy)  # schema 1 copied its one file; the same bytes
    copy_s = time.perf_counter() - began
    copy.unlink()
    times, written = [], []
    with open_writer(path, HEADER) as writer:
        for c in range(commits):
            for i in range(batch):
                writer.add_track(_track(c * batch + i, "new"))
            writer.commit()
            times.append(writer.last_commit_s)
            written.append(writer.last_commit_bytes)
        segments = writer.segments
    began = time.perf_counter()
    with open_store(path) as store:
        open_s = time.perf_counter() - began
        assert len(store) == size + commits * batch
        began = time.perf_counter()
        assert store.verify() == {}  # what extract pays per run to find damaged tracks
        verify_s = time.perf_counter() - began
        segments_of = store._segments.segments  # forget the digests: the per-track path
        for name, segment in segments_of.items():
            info = dataclasses.replace(segment.info, sha256="")
            segments_of[name] = dataclasses.replace(segment, info=info)
        began = time.perf_counter()
        assert store.verify() == {}
        per_track_s = time.perf_counter() - began
    median_s, median_bytes = statistics.median(times[:-1]), statistics.median(written[:-1])
    return {
        "tracks": size, "store_mb": total / 1e6, "build_s": build_s, "copy_s": copy_s,
        "commit_s": median_s, "commit_mb": median_bytes / 1e6,
        "merge_s": times[-1], "merge_mb": written[-1] / 1e6, "segments": segments,
        "open_s": open_s, "verify_s": verify_s, "per_track_s": per_track_s,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--commits", type=int, default=FANOUT)
    args = parser.parse_args()
    print(f"{args.batch} one-window 512-d tracks per commit; medians of {args.commits - 1} "
          f"commits, then the commit whose tail merge joins {FANOUT} segments")  # fmt: skip
    print("| tracks | store MB | segments | commit s | MB/commit | merge commit s | merge MB "
          "| copy s (schema 1) | open s | verify s | per-track verify s |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
            m = measure(Path(tmp), size, args.batch, args.commits)
        print(f"| {m['tracks']} | {m['store_mb']:.1f} | {m['segments']} | {m['commit_s']:.3f} "
              f"| {m['commit_mb']:.2f} | {m['merge_s']:.3f} | {m['merge_mb']:.2f} "
              f"| {m['copy_s']:.3f} | {m['open_s']:.2f} | {m['verify_s']:.2f} "
              f"| {m['per_track_s']:.1f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

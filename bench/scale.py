"""Benchmark: `extract --ray` with 1 and 2 local actors beside a plain extract; merge and reads.

Not a test. Part 1 embeds the same songs with a plain `run_extract` (one decode worker) and
with `run_extract_ray` on one local Ray (started once, its start-up timed apart) with 1 and
2 embedding actors, interleaved over --reps, each into a fresh store: x real time and the
ratio to plain. Part 2 builds two shards of one-window 512-d tracks straight as segments
(bench/store.py's build_base) and times `merge_stores` of both into a new store, then
`open_store` and `means()` of the result, per size.
Usage: python bench/scale.py [--songs DIR] [--reps 2] [--sizes 1000 10000 100000] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.store import merge_stores, open_store

sys.path.insert(0, str(Path(__file__).parent))  # bench/store.py: segment-built stores
import store as store_bench

SONGS = Path(__file__).resolve().parents[2] / "shared" / "audio" / "clmr_demo"


def throughput(songs: Path, reps: int) -> None:
    import ray

    from clmr_embed.extract.cluster import ClusterConfig, run_extract_ray

    began = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    start_s = time.perf_counter() - began
    cpus = int(ray.cluster_resources()["CPU"])
    runs = {"plain extract (1 decode worker)": None, "--ray, 1 actor": 1, "--ray, 2 actors": 2}
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        for rep in range(reps):
            for name, actors in runs.items():
                config = ExtractConfig(inputs=(songs,), output=Path(tmp) / f"{rep}-{actors}.h5")
                if actors is None:
                    summary = run_extract(config)
                else:
                    summary = run_extract_ray(config, ClusterConfig(actors=actors))
                assert summary.embedded and not summary.failed, summary
                speeds[name].append(summary.x_realtime)
    ray.shutdown()
    print(f"{os.cpu_count()} CPUs ({cpus} for Ray); Ray start-up {start_s:.1f} s (not counted); "
          f"medians of {reps} interleaved runs over {songs}")  # fmt: skip
    print("| run | x real time | vs plain |\n|---|---:|---:|")
    plain = statistics.median(speeds[next(iter(runs))])
    for name, values in speeds.items():
        speed = statistics.median(values)
        print(f"| {name} | {speed:.0f} | {speed / plain:.2f} |")


def _shard(path: Path, size: int, prefix: str) -> None:
    """A store of `size` tracks with ids and contents of their own (`prefix`)."""
    plain_track = store_bench._track
    store_bench._track = lambda i, p: plain_track(i, prefix + p)  # type: ignore[assignment]
    try:
        store_bench.build_base(path, size)
    finally:
        store_bench._track = plain_track  # type: ignore[assignment]


def merging(sizes: list[int]) -> None:
    print("| tracks | merge s | tracks/s | open s | means() s |\n|---:|---:|---:|---:|---:|")
    for size in sizes:
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
            a, b, out = Path(tmp) / "a.h5", Path(tmp) / "b.h5", Path(tmp) / "out.h5"
            _shard(a, size // 2, "a")
            _shard(b, size - size // 2, "b")
            os.sync()
            began = time.perf_counter()
            report = merge_stores([a, b], out)
            merge_s = time.perf_counter() - began
            assert report.merged == size, report
            began = time.perf_counter()
            with open_store(out) as merged:
                open_s = time.perf_counter() - began
                began = time.perf_counter()
                _, vectors = merged.means()
                means_s = time.perf_counter() - began
            assert vectors.shape == (size, store_bench.DIM)
        print(f"| {size} | {merge_s:.1f} | {size / merge_s:.0f} | {open_s:.2f} | {means_s:.2f} |",
              flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=Path, default=SONGS)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--skip-ray", action="store_true", help="Only the merge part.")
    args = parser.parse_args()
    if not args.skip_ray:
        throughput(args.songs, args.reps)
    merging(args.sizes)


if __name__ == "__main__":
    main()

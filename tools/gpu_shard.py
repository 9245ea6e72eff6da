"""Pack the distillation data (decoded corpus + teacher targets) into shards for a GPU machine.

    python -m tools.gpu_shard OUT --data /work/data/free-music/train.txt --max-mib 56

Each shard folder (`OUT/shard-NNN/`) holds Opus audio (24 kHz, ~24 kbps) and int8 targets of
whole tracks, at most --max-mib MiB, so it copies to a remote GPU quickly beside the checkout.
There: `clmr-embed train pretrain OUT/shard-* --config configs/distill-clean.toml --device cuda`
(the shards' audio is decoded once into an audio cache; their targets need no teacher). Build
the cache and targets first with `python -m tools.default_model_data`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from training.pretrain.cache import build_cache
from training.pretrain.shards import SHARD_FILE, write_shards
from training.pretrain.targets import GridSpec, TeacherTargets


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the shards, print one JSON line per shard (path, tracks, MiB)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the shard folders (empty or new)")
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="what the cache holds")
    parser.add_argument("--cache-root", type=Path, default=None, help="audio caches folder")
    parser.add_argument("--max-mib", type=float, default=56.0, help="largest shard, MiB")
    parser.add_argument("--output", default="max_pool", help="teacher output of the targets")
    parser.add_argument("--hop-seconds", type=float, default=1.0, help="target grid step")
    args = parser.parse_args(argv)
    cache, _ = build_cache(args.data, SAMPLE_RATE, cache_root=args.cache_root)
    spec = GridSpec(args.output, round(args.hop_seconds * SAMPLE_RATE), WINDOW_SAMPLES)
    targets = TeacherTargets(cache, spec)
    for shard in write_shards(targets, cache, args.out, int(args.max_mib * 2**20)):
        tracks = len(json.loads((shard / SHARD_FILE).read_text())["tracks"])
        mib = sum(f.stat().st_size for f in shard.rglob("*") if f.is_file()) / 2**20
        print(json.dumps({"shard": str(shard), "tracks": tracks, "mib": round(mib, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

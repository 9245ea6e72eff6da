"""Rebuild the default model's data on a fresh machine: corpus, manifests, decode cache, targets.

Every step is resumable and skipped when already done, so the command can simply be rerun:

    python -m tools.default_model_data /work/data/free-music --cache-root /work/cache/audio

1. the free-music corpus (`../shared/data/free-music.sh DIR`, ~6.6 GB download, 2.2 GB kept;
   done once DIR/.complete exists: `touch` it after running the script by hand to the end);
2. `train.txt` / `holdout.txt` manifests beside it (configs/free-music-holdout.txt is held out);
3. the decoded 22,050 Hz audio cache of `train.txt` (what `train pretrain` reads);
4. the musicnn teacher targets on the crop grid of that cache (what distillation reads).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from clmr_embed.atomic import write_text
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from tools.unseen_probe import holdout_packages
from training.pretrain.cache import build_cache
from training.pretrain.targets import GridSpec, TargetJob, build_targets

SHARED = Path(__file__).resolve().parents[2] / "shared"


COMPLETE = ".complete"  # written beside manifest.csv once the download script has finished


def ensure_corpus(corpus: Path, script: Path = SHARED / "data" / "free-music.sh") -> None:
    """Download and unpack the corpus unless a finished download is there.

    free-music.sh writes manifest.csv as it goes, so a manifest alone may list a corpus cut
    short (a killed download): only the marker written after the script's success counts.
    """
    if (corpus / COMPLETE).is_file():
        return
    print(f"building the corpus with {script} (about 6.6 GB download) ...", file=sys.stderr)
    subprocess.run(["bash", str(script), str(corpus)], check=True)
    write_text(corpus / COMPLETE, "")


def write_manifests(corpus: Path) -> tuple[Path, Path]:
    """train.txt and holdout.txt (paths relative to the corpus) split by package."""
    held = set(holdout_packages())
    with open(corpus / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train, holdout = corpus / "train.txt", corpus / "holdout.txt"
    write_text(train, "".join(r["path"] + "\n" for r in rows if r["package"] not in held))
    write_text(holdout, "".join(r["path"] + "\n" for r in rows if r["package"] in held))
    return train, holdout


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the four steps, print where the cache and targets are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder for the free-music corpus")
    parser.add_argument("--cache-root", type=Path, default=None, help="audio caches folder")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights", help="teacher files")
    parser.add_argument("--output", default="max_pool", help="teacher output to regress")
    parser.add_argument("--hop-seconds", type=float, default=1.0, help="crop grid step")
    parser.add_argument("--workers", type=int, default=2, help="teacher processes")
    parser.add_argument("--limit", type=int, default=0, help="stop after N tracks (0: all)")
    args = parser.parse_args(argv)
    ensure_corpus(args.corpus)
    train, holdout = write_manifests(args.corpus)
    cache, summary = build_cache([train], SAMPLE_RATE, cache_root=args.cache_root)
    print(f"cache {summary.folder}: {summary.tracks} tracks, {summary.seconds / 3600:.1f} h")
    spec = GridSpec(args.output, round(args.hop_seconds * SAMPLE_RATE), WINDOW_SAMPLES)
    targets = build_targets(cache, TargetJob(spec, args.weights, args.workers, args.limit))
    print(f"targets {targets.folder}: {targets.coverage:.0%} of {targets.offsets[-1]} crops")
    print(f"held out: {holdout}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: `clmr-embed extract` of several commits, interleaved run by run on the same songs.

Not a test. Each REV gets a git worktree (/tmp/clmr-bench-SHA) and runs through one Python that
sees the installed dependencies but not the editable clmr_embed (a venv whose .pth names this
venv's site-packages; PYTHONPATH picks the worktree), so only the code differs. Per repetition,
in alternating order: `python -m clmr_embed extract SONGS OUT.h5 --json EXTRA` (its x_realtime,
and the whole process's wall time), `--help`, and extract of one short file (start-up).

    python bench/commits.py REV [REV...] [--songs 6] [--reps 3] [--extra "--workers 1"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "audio"
VENV = Path("/tmp/clmr-bench-venv")


def _python() -> str:
    """A Python with this venv's packages but no editable clmr_embed finder."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], check=True)
        code = "import sysconfig; print(sysconfig.get_path('purelib'))"
        site = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                              check=True)  # fmt: skip
        Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return str(python)


def _worktree(rev: str) -> Path:
    sha = subprocess.run(["git", "-C", str(HERE), "rev-parse", rev], capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    tree = Path(f"/tmp/clmr-bench-{sha[:10]}")
    if not tree.exists():
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "-q", "--detach", str(tree),
                        sha], check=True)  # fmt: skip
    return tree


def _run(python: str, tree: Path, args: list[str]) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        done = subprocess.run([python, "-m", "clmr_embed", *args], capture_output=True,
                              text=True, cwd=tmp, env={**os.environ, "PYTHONPATH": str(tree)},
                              check=False)  # fmt: skip
        return time.perf_counter() - began, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="+")
    parser.add_argument("--songs", type=int, default=6)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--extra", default="", help="extract options, e.g. '--workers 1'")
    args = parser.parse_args()
    python, trees = _python(), {rev: _worktree(rev) for rev in args.revs}
    songs = [str(p) for p in sorted((SHARED / "clmr_demo").glob("*.mp3"))[: args.songs]]
    short = sorted(str(p) for p in (SHARED / "medley_solos_subset").rglob("*.flac"))[:1]
    results: dict[str, dict[str, list[float]]] = {r: {} for r in args.revs}
    for rep in range(args.reps):
        for rev in args.revs if rep % 2 == 0 else args.revs[::-1]:
            tree, out = trees[rev], results[rev]
            wall, stdout = _run(python, tree, ["extract", *songs, "OUT.h5", "--json",
                                               *shlex.split(args.extra)])  # fmt: skip
            x = json.loads(stdout.strip().splitlines()[-1])["x_realtime"] if stdout else 0.0
            out.setdefault("x_realtime", []).append(x)
            out.setdefault("process_s", []).append(wall)
            out.setdefault("help_s", []).append(_run(python, tree, ["--help"])[0])
            start = _run(python, tree, ["extract", *short, "S.h5", *shlex.split(args.extra)])[0]
            out.setdefault("short_s", []).append(start)
            print(f"  rep {rep} {rev}: x {x:.1f}, process {wall:.1f} s", file=sys.stderr)
    print(
        f"{'rev':<12} {'best x':>8} {'median x':>9} {'process s':>10} {'--help s':>9} "
        f"{'short s':>8}   (best of {args.reps}; extract {args.extra or 'defaults'})"
    )
    for rev, out in results.items():
        print(f"{rev:<12} {max(out['x_realtime']):7.1f}x "
              f"{statistics.median(out['x_realtime']):8.1f}x {min(out['process_s']):10.2f} "
              f"{min(out['help_s']):9.2f} {min(out['short_s']):8.2f}")  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()

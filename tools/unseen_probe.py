"""Excerpt retrieval on music no model saw: the held-out packages of the free-music corpus.

Each held-out track gives two 20-s excerpts (at 25 % and 60 % of its length); an excerpt's vector
is the mean of its window embeddings; each excerpt queries all others by centred cosine (and, the
second figure, plain cosine) and scores 1 / the rank of its sibling (MRR).

    python -m tools.unseen_probe FREE_MUSIC_DIR clmr-free random mfcc teacher runs/x/latest.pt
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from clmr_embed.audio import frame, load_audio, resample
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.embed import Embedder
from clmr_embed.errors import ClmrEmbedError
from training.linear.baselines import mfcc_window_features, random_encoder_checkpoint
from training.pretrain.teacher import TEACHER_RATE, Teacher, centred_patches
from training.retrieval import pair_mrr, reciprocal_ranks
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint

HOLDOUT = Path(__file__).resolve().parents[1] / "configs" / "free-music-holdout.txt"
EXCERPT_SECONDS = 20.0
EXCERPT_AT = (0.25, 0.60)  # excerpt starts, as shares of the track length
WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"

Excerpt = npt.NDArray[np.float32]  # mono float32 at SAMPLE_RATE
Embed = Callable[[Excerpt], npt.NDArray[np.float64]]  # excerpt -> its vector


def holdout_packages(file: Path = HOLDOUT) -> list[str]:
    """Package names listed in configs/free-music-holdout.txt."""
    lines = (line.strip() for line in file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def holdout_files(corpus: Path) -> list[Path]:
    """The corpus files of the held-out packages, from its manifest.csv, in manifest order."""
    packages = set(holdout_packages())
    with open(corpus / "manifest.csv", newline="") as handle:
        return [corpus / r["path"] for r in csv.DictReader(handle) if r["package"] in packages]


def excerpts(files: Sequence[Path]) -> list[tuple[Excerpt, Excerpt]]:
    """Two excerpts per decodable file at least two excerpts long; others are left out."""
    size = int(EXCERPT_SECONDS * SAMPLE_RATE)
    pairs = []
    for path in tqdm(files, desc="decoding held-out tracks", file=sys.stderr):
        try:
            audio, _ = load_audio(path, SAMPLE_RATE)
        except ClmrEmbedError as exc:  # a broken file is reported and skipped
            print(f"skipped {path}: {exc}", file=sys.stderr)
            continue
        if len(audio) < 2.5 * size:
            continue
        starts = [int(share * len(audio)) for share in EXCERPT_AT]
        a, b = (np.ascontiguousarray(audio[s : s + size]) for s in starts)
        pairs.append((a, b))
    return pairs


def _windows(excerpt: Excerpt) -> npt.NDArray[np.float32]:
    return frame(excerpt, WINDOW_SAMPLES, WINDOW_SAMPLES).windows


def torch_embedder(encoder: SampleCNN) -> Embed:
    """Mean window embedding of a torch encoder (checkpoints mid-training need no export)."""
    encoder.eval()

    def embed(excerpt: Excerpt) -> npt.NDArray[np.float64]:
        with torch.inference_mode():
            out = encoder(torch.from_numpy(_windows(excerpt))[:, None])
        return out.double().mean(0).numpy()

    return embed


def onnx_embedder(model: str) -> Embed:
    """Mean window embedding through the runtime (a model name or .onnx path)."""
    embedder = Embedder(model)
    return lambda x: embedder.embed(x, SAMPLE_RATE).embeddings.astype(np.float64).mean(0)


def mfcc_embedder(excerpt: Excerpt) -> npt.NDArray[np.float64]:
    """Mean of the per-window MFCC statistics (the hand-crafted baseline)."""
    return mfcc_window_features(_windows(excerpt)).astype(np.float64).mean(0)


def teacher_embedder(weights: Path, output: str = "max_pool") -> Embed:
    """The teacher's own output, averaged over patches centred on each window."""
    teacher = Teacher(weights, threads=0)

    def embed(excerpt: Excerpt) -> npt.NDArray[np.float64]:
        frames = teacher.logmel(resample(excerpt, SAMPLE_RATE, TEACHER_RATE))
        n = len(_windows(excerpt))
        centres = (np.arange(n) * WINDOW_SAMPLES + WINDOW_SAMPLES / 2) / SAMPLE_RATE
        return teacher.run(centred_patches(frames, centres), output).astype(np.float64).mean(0)

    return embed


def make_embedder(name: str, pairs: list[tuple[Excerpt, Excerpt]]) -> Embed:
    """`random`, `mfcc`, `teacher`, a checkpoint (.pt/.ckpt), or a model name / .onnx path."""
    if name == "mfcc":
        return mfcc_embedder
    if name == "teacher":
        return teacher_embedder(WEIGHTS)
    if name == "random":  # seed-0 init, BatchNorm statistics recalibrated on these excerpts
        ckpt = random_encoder_checkpoint(_windows(x) for pair in pairs for x in pair)
    elif name.endswith((".pt", ".ckpt")):
        ckpt = load_checkpoint(Path(name))
    else:
        return onnx_embedder(name)
    if ckpt.encoder_state is None:
        raise SystemExit(f"{name} holds no encoder weights")
    encoder = SampleCNN(ckpt.encoder_config)
    encoder.load_state_dict(ckpt.encoder_state)
    return torch_embedder(encoder)


def embed_pairs(
    name: str, pairs: list[tuple[Excerpt, Excerpt]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Both excerpts' vectors of every pair under one encoder: [n, dim] twice."""
    embed = make_embedder(name, pairs)
    return np.stack([embed(a) for a, _ in pairs]), np.stack([embed(b) for _, b in pairs])


def probe_both(
    names: Sequence[str], pairs: list[tuple[Excerpt, Excerpt]]
) -> dict[str, dict[str, float]]:
    """{"centred", "plain"} MRR of each encoder on the same excerpt pairs."""
    scores = {}
    for name in names:
        first, second = embed_pairs(name, pairs)
        scores[name] = {
            "centred": pair_mrr(first, second),
            "plain": pair_mrr(first, second, centre=False),
        }
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores[name].items())
        print(f"{name}: MRR {shown} ({len(pairs)} tracks)", file=sys.stderr)
    return scores


def probe(
    names: Sequence[str], pairs: list[tuple[Excerpt, Excerpt]]
) -> dict[str, npt.NDArray[np.float64]]:
    """Each encoder's reciprocal ranks (centred cosine) on the same excerpt pairs, query by
    query: their mean is the install gate's MRR, their differences its noise."""
    ranks = {}
    for name in names:
        ranks[name] = reciprocal_ranks(*embed_pairs(name, pairs))
        print(f"{name}: MRR {ranks[name].mean():.3f} ({len(pairs)} tracks)", file=sys.stderr)
    return ranks


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print {encoder: MRR} as JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="free-music folder (with manifest.csv)")
    parser.add_argument("encoders", nargs="+", help="random, mfcc, teacher, CKPT.pt, NAME/.onnx")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    pairs = excerpts(holdout_files(args.corpus))
    both = probe_both(args.encoders, pairs)
    result = {
        "tracks": len(pairs),
        "mrr": {name: v["centred"] for name, v in both.items()},
        "mrr_plain": {name: v["plain"] for name, v in both.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

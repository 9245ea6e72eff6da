"""Figures of the model card: tagger-teacher agreement on held-out audio, excerpt retrieval."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from clmr_embed.embed import Embedder
from training.linear.labels import read_labels
from training.linear.metrics import tagwise
from training.retrieval import excerpt_retrieval

TOP_K = 5  # a track's teacher tags: its TOP_K highest-scoring tags (musicnn's own tag lists)
QUANTILE = 0.75  # per tag: tracks in the top quarter of the teacher's scores for that tag
# One file per song: the demo folder holds two encodings of Imagine and of Love of My Life, and
# an excerpt would trivially find itself in the other encoding.
DEMO_SONGS = (
    "fisher_losing_it_22050.mp3",
    "john_lennon_imagine.mp3",
    "nirvana_smells_like_teen_spirit_22050.mp3",
    "queen_love_of_my_life.mp3",
)


def binarise_top_k(scores: npt.ArrayLike, k: int = TOP_K) -> npt.NDArray[np.bool_]:
    """Per row, True for the k highest scores (ties broken by column order)."""
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    out = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(out, order, True, axis=1)
    return out


def binarise_quantile(scores: npt.ArrayLike, q: float = QUANTILE) -> npt.NDArray[np.bool_]:
    """Per column, True above the column's q-quantile (the top 1 - q of the rows)."""
    s = np.asarray(scores, dtype=np.float64)
    return s > np.quantile(s, q, axis=0, keepdims=True)


def _summary(truth: npt.NDArray[np.bool_], scores: npt.ArrayLike, labels: Sequence[str]) -> dict:
    roc, pr = tagwise(truth, scores)
    scored = ~np.isnan(roc)
    return {
        "tag_roc_auc": float(np.nanmean(roc)),
        "tag_pr_auc": float(np.nanmean(pr)),
        "tags_scored": int(scored.sum()),
        "positive_rate": float(truth[:, scored].mean()),
        "per_tag_roc_auc": {
            label: round(float(v), 4) for label, v in zip(labels, roc, strict=True) if v == v
        },
    }


def agreement(tagger: Path, labels: Path, split: str = "test") -> dict:
    """Tag-wise ROC-AUC / PR-AUC of `tagger`'s track scores against the teacher's binarised tags.

    Args:
        tagger: a tagger ONNX file with the same labels as the manifest.
        labels: the teacher's soft-target manifest (tools.teacher_labels), with splits.
        split: the items to score (the audio held out from the head's training).

    Returns:
        One summary per binarisation rule ("top5": each track's 5 highest teacher tags;
        "top_quartile": per tag, the tracks in its top quarter), the counts, and the Pearson
        correlation of teacher and tagger scores over all (track, tag) pairs.
    """
    data = read_labels(labels)
    keep = [i for i, s in enumerate(data.splits) if s == split]
    embedder = Embedder(tagger, device="cpu")
    if tuple(embedder.info.labels) != tuple(data.labels):
        raise ValueError(f"{tagger} labels differ from {labels}'s columns")
    scores = np.stack(
        [embedder.tag_file(data.paths[i]).scores for i in tqdm(keep, desc="agreement")]
    )
    teacher = data.targets[keep]
    return {
        "split": split,
        "tracks": len(keep),
        "groups": len({data.groups[i] for i in keep}),
        "top5": _summary(binarise_top_k(teacher), scores, data.labels),
        "top_quartile": _summary(binarise_quantile(teacher), scores, data.labels),
        "pearson_r": float(np.corrcoef(teacher.ravel(), scores.ravel())[0, 1]),
    }


def demo_song_windows(model: Path, demo: Path) -> list[np.ndarray]:
    """Window embeddings of the four distinct demo songs by `model` (back-to-back windows)."""
    embedder = Embedder(model, device="cpu")
    return [embedder.embed_file(demo / name).embeddings for name in DEMO_SONGS]


def retrieval(models: dict[str, Path], demo: Path, excludes: Sequence[int] = (0, 1)) -> dict:
    """Excerpt retrieval on the demo songs for each model, at each `exclude` distance."""
    results = {}
    for name, path in models.items():
        windows = demo_song_windows(path, demo)
        results[name] = {f"exclude_{e}": excerpt_retrieval(windows, e).to_dict() for e in excludes}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tools.model_eval agreement TAGGER LABELS` or `retrieval MODEL... [--demo DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m tools.model_eval", description=__doc__)
    sub = parser.add_subparsers(dest="figure", required=True)
    agree = sub.add_parser("agreement", help="a tagger against the teacher manifest's test split")
    agree.add_argument("tagger", type=Path)
    agree.add_argument("labels", type=Path)
    ret = sub.add_parser("retrieval", help="excerpt retrieval on the demo songs")
    ret.add_argument("models", nargs="+", type=Path)
    ret.add_argument(
        "--demo", type=Path, default=Path(__file__).parents[2] / "shared/audio/clmr_demo"
    )
    args = parser.parse_args(argv)
    if args.figure == "agreement":
        result = agreement(args.tagger, args.labels)
    else:
        result = retrieval({m.stem: m for m in args.models}, args.demo)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

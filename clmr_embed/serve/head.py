"""Tags of stored embeddings: the head of the store's model, run without audio (and no torch)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.utils

from clmr_embed.artifact import HEAD_IO, TAGGER_IO
from clmr_embed.atomic import atomic_path
from clmr_embed.model import OnnxModel, SessionConfig
from clmr_embed.registry import cache_dir
from clmr_embed.scores import probabilities, track_scores
from clmr_embed.search.vectors import Matrix


class TagHead:
    """A head-only ONNX model (embedding -> logits) with the labels and task of its tagger."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.labels = model.info.labels
        self.task = model.info.task

    def window_probs(self, embeddings: Matrix) -> Matrix:
        """Per-window probabilities (n_windows, n_labels) of stored window embeddings."""
        return probabilities(self.model.run_head(embeddings), self.task)

    def track_scores(self, embeddings: Matrix) -> Matrix:
        """A track's label scores: the mean of its windows' probabilities (as `tag`)."""
        return track_scores(self.window_probs(embeddings))


def head_path(tagger: OnnxModel) -> Path:
    """Where the head cut from a tagger is cached (keyed by the tagger's sha256)."""
    return cache_dir() / "heads" / f"{tagger.sha256[:24]}-head.onnx"


def cut_head(tagger: OnnxModel, path: Path) -> Path:
    """Write the tagger's embedding -> logits subgraph as a head ONNX file with head metadata."""
    full = onnx.load(str(tagger.path))
    head = onnx.utils.Extractor(full).extract_model(list(HEAD_IO.inputs), [TAGGER_IO.outputs[1]])
    info = dataclasses.replace(tagger.info, kind="head")
    del head.metadata_props[:]
    onnx.helper.set_model_props(head, info.to_metadata())
    with atomic_path(path) as tmp:
        onnx.save(head, str(tmp))
    return path


def open_head(model: OnnxModel) -> TagHead | None:
    """The head of a tagger or head model; None for an encoder (no tags)."""
    if model.info.kind == "encoder":
        return None
    if model.info.kind == "head":
        return TagHead(model)
    path = head_path(model)
    if not path.is_file():
        try:
            cut_head(model, path)
        except OSError:  # a read-only cache: cut it into a temporary folder instead
            path = cut_head(model, Path(tempfile.mkdtemp(prefix="clmr-head-")) / path.name)
    return TagHead(OnnxModel(path, SessionConfig(device="cpu", threads=1)))


def tag_matrix(head: TagHead, windows: list[Matrix]) -> Matrix:
    """(n_tracks, n_labels) scores of many tracks' window embeddings, in one head call."""
    if not windows:
        return np.zeros((0, len(head.labels)), np.float32)
    probs = head.window_probs(np.concatenate(windows))
    bounds = np.cumsum([0] + [len(w) for w in windows])
    return np.stack(
        [track_scores(probs[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    )

"""What the web app shows of a store: tracks on a map, their tags, neighbours and unit windows."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clmr_embed.model import OnnxModel, SessionConfig
from clmr_embed.scores import best_tags
from clmr_embed.search import (
    Searcher,
    StoreEmbedder,
    load_space,
    normalise,
    sidecar_dir,
    store_fingerprint,
    store_model,
)
from clmr_embed.search.sidecar import read_arrays, write_arrays
from clmr_embed.search.vectors import Labels, Matrix, StoreView, raw_rows
from clmr_embed.serve.config import ServeConfig
from clmr_embed.serve.head import TagHead, open_head, tag_matrix
from clmr_embed.serve.projection import TrackMap, choose_method, load_map


@dataclass(frozen=True)
class Placed:
    """A new file embedded with the store's model: its tags, map position and neighbours."""

    name: str  # the uploaded file's name
    duration_s: float  # seconds of audio embedded (whole windows)
    tags: list[dict[str, Any]]  # [{label, score}], best first ([] without a tagger)
    xy: list[float]  # position on the map
    neighbours: list[dict[str, Any]]  # nearest stored tracks, best first


class Library:
    """One store opened for the web app; everything is computed once and kept."""

    def __init__(self, store: StoreView, config: ServeConfig) -> None:
        self.store = store
        self.config = config
        self.fingerprint = store_fingerprint(store)
        self.model = store_model(store, config.model)
        self.head: TagHead | None = open_head(OnnxModel(self.model.path, SessionConfig("cpu")))
        self.tracks = load_space(store, "tracks")
        self.searcher = Searcher(store, "tracks")
        method = choose_method(config.projection, len(self.tracks.vectors))
        cache = sidecar_dir(store.path)
        self.map: TrackMap = load_map(
            cache / f"map-{method}.npz", self.fingerprint, self.tracks.vectors, method
        )
        self.tags = self._tag_matrix(cache / "tags.npz")
        self._windows: tuple[Matrix, Labels] | None = None
        self._embedder: StoreEmbedder | None = None
        self._lock = threading.Lock()

    @property
    def labels(self) -> tuple[str, ...]:
        """The tagger's labels ("" for an encoder-only model)."""
        return self.head.labels if self.head else ()

    def _tag_matrix(self, path: Path) -> Matrix:
        if self.head is None:
            return np.zeros((len(self.tracks.vectors), 0), np.float32)
        key = f"{self.fingerprint}:{self.head.model.sha256}"
        saved = read_arrays(path, key)
        if saved is not None:
            return saved["scores"].astype(np.float32)
        ids = self.tracks.labels.track_ids
        scores = tag_matrix(self.head, [self.store.embeddings(t) for t in ids])
        write_arrays(path, key, {"scores": scores})
        return scores

    def summary(self) -> dict[str, Any]:
        """The page's start-up data: model, labels, and every track with its map position."""
        header = self.store.header
        labels = self.tracks.labels
        return {
            "store": self.store.path.name,
            "model": header.model_name,
            "embedding_dim": header.embedding_dim,
            "window_s": header.window_samples / header.sample_rate,
            "labels": list(self.labels),
            "projection": self.map.method,
            "tracks": [
                {
                    "id": tid,
                    "relpath": relpath,
                    "x": round(float(x), 5),
                    "y": round(float(y), 5),
                    "duration_s": round(float(self.store.attrs(tid)["duration_s"]), 2),
                }
                for tid, relpath, (x, y) in zip(
                    labels.track_ids, labels.relpaths, self.map.xy, strict=True
                )
            ],
        }

    def tag_scores(self, label: str) -> list[float] | None:
        """Every track's score for one label (None for an unknown label)."""
        if label not in self.labels:
            return None
        column = self.tags[:, self.labels.index(label)]
        return [round(float(s), 5) for s in column]

    def track(self, track_id: str) -> dict[str, Any] | None:
        """A track's top tags, taggram and nearest tracks (None for an unknown id)."""
        ids = self.tracks.labels.track_ids
        if track_id not in ids:
            return None
        row = ids.index(track_id)
        record: dict[str, Any] = {
            "id": track_id,
            "relpath": self.tracks.labels.relpaths[row],
            "neighbours": [
                n.to_dict()
                for n in self.searcher.nearest(
                    self.store.mean(track_id), self.config.top_k, track_id
                )
            ],
            "tags": [],
        }
        if self.head is not None:
            record["tags"] = _tag_list(self.tags[row], self.labels, self.config.top_k)
            record["taggram"] = self._taggram(track_id)
        return record

    def _taggram(self, track_id: str) -> dict[str, Any]:
        assert self.head is not None
        probs = self.head.window_probs(self.store.embeddings(track_id))
        return {
            "starts_s": [round(float(s), 3) for s in self.store.starts_s(track_id)],
            "labels": list(self.labels),
            "probs": np.round(probs, 4).tolist(),  # (n_windows, n_labels)
        }

    def windows(self) -> tuple[Matrix, Labels]:
        """All raw window embeddings with their labels, read once on first use."""
        with self._lock:
            if self._windows is None:
                self._windows = raw_rows(self.store, "windows")
            return self._windows

    def unit_windows(self, units: list[int], top_k: int) -> list[dict[str, Any]]:
        """The windows whose mean activation over `units` is highest, highest first."""
        raw, labels = self.windows()
        if not len(raw):
            return []
        activation = raw[:, units].mean(axis=1)
        top_k = min(top_k, len(activation))
        best = np.argpartition(-activation, top_k - 1)[:top_k]
        best = best[np.argsort(-activation[best], kind="stable")]
        window_s = self.store.header.window_samples / self.store.header.sample_rate
        return [
            {
                "track_id": labels.track_ids[labels.rows[i]],
                "relpath": labels.relpaths[labels.rows[i]],
                "start_s": round(float(labels.starts_s[i]), 3),
                "end_s": round(float(labels.starts_s[i]) + window_s, 3),
                "activation": round(float(activation[i]), 5),
            }
            for i in best
        ]

    def place(self, path: Path, name: str) -> Placed:
        """Embed a new file with the store's model; tag it and put it on the map."""
        with self._lock:
            if self._embedder is None:
                self._embedder = StoreEmbedder(self.store, self.model, device="cpu")
            embedder = self._embedder
        track = embedder.embed_file(path)
        tags = (
            _tag_list(self.head.track_scores(track.embeddings), self.labels, self.config.top_k)
            if self.head
            else []
        )
        unit = normalise(track.mean, self.tracks.labels.centre)[0]
        xy = self.map.place(unit, self.tracks.vectors)
        neighbours = [n.to_dict() for n in self.searcher.nearest(track.mean, self.config.top_k)]
        seconds = (
            len(track.starts_s) * self.store.header.window_samples / self.store.header.sample_rate
        )
        return Placed(name, round(seconds, 2), tags, [round(float(v), 5) for v in xy], neighbours)


def _tag_list(scores: Matrix, labels: tuple[str, ...], count: int) -> list[dict[str, Any]]:
    return [
        {"label": t.label, "score": round(t.score, 5)} for t in best_tags(scores, labels, count)
    ]

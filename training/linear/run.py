"""`run_linear`: labels -> frozen features -> a probe per label fraction -> report, head, tagger."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from clmr_embed.atomic import write_text
from clmr_embed.digest import file_sha256
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.registry import cache_dir
from clmr_embed.resolution import resolve_model
from training.checkpoint import Checkpoint, save_checkpoint
from training.linear.baselines import audio_windows, mfcc_features, random_encoder_checkpoint
from training.linear.config import LinearRunConfig
from training.linear.dataset import LabelledSet, keep_existing
from training.linear.features import Features, features_from_store
from training.linear.labels import read_labels
from training.linear.probe import EvalResult, run_linear_eval
from training.linear.report import write_report


class OnnxExport(Protocol):
    """The ONNX step of a run that needs torch; export implements it (export imports training)."""

    def tagger(self, encoder: Path, head: Checkpoint, output: Path, name: str) -> Path:
        """Merge an encoder ONNX and a trained head into one tagger ONNX at `output`."""
        ...


@dataclass(frozen=True)
class FeatureStore:
    """The store the features were read from, and what `clmr-embed extract` did to it."""

    store: str  # the HDF5 store (shared by runs with the same encoder and data root)
    embedded: int  # files embedded by this run
    unchanged: int  # files already in the store
    failed: tuple[tuple[str, str], ...]  # (path, reason) of files extract could not embed


@dataclass(frozen=True)
class LinearResult:
    """What `run_linear` did; `to_dict()` is summary.json and `train linear --json`."""

    encoder: str  # the encoder as given (path, "mfcc" or "random")
    items: int  # labelled items evaluated (those with audio)
    task: str  # "multiclass", "multilabel" or "soft"
    results: tuple[EvalResult, ...]  # one per label fraction, in the order asked
    files: tuple[Path, ...]  # report files, head.pt and the tagger ONNX (if an encoder was used)
    features: FeatureStore | None  # None for MFCC features (no store)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the keys of summary.json)."""
        summary: dict[str, Any] = {
            "encoder": self.encoder,
            "items": self.items,
            "task": self.task,
            "results": [
                {"label_fraction": r.config.label_fraction, **r.to_dict()["summary"]}
                for r in self.results
            ],
            "files": [str(f) for f in self.files],
        }
        if self.features is not None:
            summary["features"] = {
                "store": self.features.store,
                "embedded": self.features.embedded,
                "unchanged": self.features.unchanged,
                "failed": [{"path": p, "reason": r} for p, r in self.features.failed],
            }
        return summary


def run_linear(config: LinearRunConfig, export: OnnxExport) -> LinearResult:
    """Probe an encoder at every label fraction; write report, head.pt, tagger and summary.json.

    Args:
        config: encoder, labels, run folder, probe settings and label fractions.
        export: the ONNX steps (export.linear.LinearExport in the CLI and tools).

    Raises:
        DataError, CheckpointError, ModelArtifactError, ConfigError: bad labels, encoder or
            settings.
    """
    run_dir = config.output_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    data, dropped = keep_existing(read_labels(config.labels))
    encoder = None if config.encoder == "mfcc" else encoder_onnx(config, data)
    features, store = read_features(data, encoder)
    results = tuple(
        run_linear_eval(features, data, dataclasses.replace(config.probe, label_fraction=f))
        for f in config.fractions
    )
    files = write_outputs(config, results, data, dropped)
    if encoder is not None and config.tagger:
        name = config.name or run_dir.name
        tagger = run_dir / f"{name}-tagger.onnx"
        files.append(export.tagger(encoder, results[0].checkpoint, tagger, name))
    result = LinearResult(config.encoder, len(data), results[0].task, results, tuple(files), store)
    write_text(run_dir / "summary.json", json.dumps(result.to_dict(), indent=2))
    return result


def encoder_onnx(config: LinearRunConfig, data: LabelledSet) -> Path:
    """The encoder as an ONNX file: the random baseline, else the one model resolution's file.

    A name, an encoder or tagger ONNX and a checkpoint are all accepted (clmr_embed.resolution).
    """
    if config.encoder != "random":
        return resolve_model(config.encoder)
    windows = audio_windows(data.paths, per_file=4)
    checkpoint = config.output_dir / "random-encoder.pt"
    save_checkpoint(checkpoint, random_encoder_checkpoint(windows, seed=config.probe.seed))
    return resolve_model(checkpoint)


def read_features(data: LabelledSet, encoder: Path | None) -> tuple[Features, FeatureStore | None]:
    """MFCC statistics without an encoder; else the encoder's embeddings via a cached store."""
    if encoder is None:
        return mfcc_features(data.paths), None
    store = feature_store(file_sha256(encoder), data.root)
    summary = run_extract(ExtractConfig(inputs=(data.root,), output=store, model=str(encoder)))
    failed = tuple((str(path), str(reason)) for path, reason in summary.failed)
    done = FeatureStore(str(summary.store), summary.embedded, summary.unchanged, failed)
    return features_from_store(store, data.relpaths), done


def feature_store(model_sha256: str, root: Path) -> Path:
    """Where the features of `root` under a model are cached, shared by every run."""
    key = hashlib.sha1(f"{model_sha256}:{root.resolve()}".encode()).hexdigest()[:16]
    folder = cache_dir() / "features"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.h5"


def write_outputs(
    config: LinearRunConfig, results: tuple[EvalResult, ...], data: LabelledSet, dropped: int
) -> list[Path]:
    """report.md/.json and plots, and head.pt (the head of the first label fraction)."""
    head = "linear" if not config.probe.mlp else f"MLP ({config.probe.hidden_dim} ReLU)"
    notes = {
        "encoder": config.encoder,
        "labels": str(config.labels),
        "items": f"{len(data)} ({dropped} listed without audio were dropped)",
        "head": head,
    }
    title = f"Linear evaluation: {config.encoder}"
    files = write_report(config.output_dir, results, title=title, notes=notes)
    save_checkpoint(config.output_dir / "head.pt", results[0].checkpoint)
    return [*files, config.output_dir / "head.pt"]

"""`clmr-embed train linear`: features through the runtime's store, heads, report, tagger export.

Part of the CLI: training and export are imported inside `run_linear` only (see cli_train).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BASELINES = ("mfcc", "random")


@dataclass(frozen=True)
class LinearOptions:
    """What `train linear` was asked to do."""

    encoder: str  # checkpoint (.pt/.ckpt), ONNX file, "mfcc" or "random"
    labels: Path  # manifest, class folders, or an MTAT folder
    output_dir: Path  # run folder: report, head, tagger
    mlp: bool = False  # one hidden layer instead of a linear head
    fractions: tuple[float, ...] = (1.0,)  # label fractions to run
    folds: int = 5  # k of the grouped k-fold when no split is given
    split: str = "auto"  # "auto", "given" or "kfold"
    repeats: int = 1  # k-fold repetitions
    seed: int = 0  # seeds splits, heads and the random baseline
    name: str | None = None  # tagger name (default: the run folder's name)


def _feature_store(model_sha: str, root: Path) -> Path:
    """Where features of `root` under a model are cached, shared by every run."""
    from clmr_embed.registry import cache_dir

    key = hashlib.sha1(f"{model_sha}:{root.resolve()}".encode()).hexdigest()[:16]
    return cache_dir() / "features" / f"{key}.h5"


def _encoder_onnx(options: LinearOptions, data: Any, run_dir: Path) -> Path:
    """The encoder as an ONNX file: given, exported from a checkpoint, or the random baseline."""
    from clmr_embed.digest import file_sha256
    from export.api import ExportConfig, run_export

    spec = options.encoder
    if spec.endswith(".onnx"):
        return Path(spec)
    checkpoint = Path(spec)
    if spec == "random":
        from training.baselines import audio_windows, random_encoder_checkpoint
        from training.checkpoint import save_checkpoint

        ckpt = random_encoder_checkpoint(audio_windows(data.paths, per_file=4), seed=options.seed)
        checkpoint = run_dir / "random-encoder.pt"
        save_checkpoint(checkpoint, ckpt)
    digest = file_sha256(checkpoint)[:12]
    folder = run_dir / "encoder" / digest
    name = "random" if spec == "random" else checkpoint.stem
    onnx_file = folder / f"{name}-encoder.onnx"
    if not onnx_file.is_file():
        run_export(ExportConfig(checkpoint=checkpoint, output_dir=folder, name=name, force=True))
    return onnx_file


def _features(options: LinearOptions, data: Any, run_dir: Path) -> tuple[Any, Path | None, Any]:
    """Per-clip window features, the encoder ONNX and the extract summary (None, None for MFCC)."""
    if options.encoder == "mfcc":
        from training.baselines import mfcc_features

        return mfcc_features(data.paths), None, None
    from clmr_embed.digest import file_sha256
    from clmr_embed.extract import ExtractConfig, run_extract
    from training.features import features_from_store

    encoder = _encoder_onnx(options, data, run_dir)
    store = _feature_store(file_sha256(encoder), data.root)
    store.parent.mkdir(parents=True, exist_ok=True)
    summary = run_extract(ExtractConfig(inputs=(data.root,), output=store, model=str(encoder)))
    return features_from_store(store, data.relpaths), encoder, summary


def run_linear(options: LinearOptions) -> dict[str, Any]:
    """Run the probe for every label fraction; write report, head and tagger. Returns a summary."""
    from training.checkpoint import save_checkpoint
    from training.labels import keep_existing, read_labels
    from training.linear_eval import LinearEvalConfig, run_linear_eval
    from training.report import write_report

    run_dir = options.output_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    data, dropped = keep_existing(read_labels(options.labels))
    features, encoder, extracted = _features(options, data, run_dir)
    base = LinearEvalConfig(
        mlp=options.mlp,
        folds=options.folds,
        split=options.split,
        repeats=options.repeats,
        seed=options.seed,
    )
    results = [
        run_linear_eval(features, data, replace(base, label_fraction=fraction))
        for fraction in options.fractions
    ]
    notes = {
        "encoder": options.encoder,
        "labels": str(options.labels),
        "items": f"{len(data)} ({dropped} listed without audio were dropped)",
        "head": "MLP (512 ReLU)" if options.mlp else "linear",
    }
    files = write_report(
        run_dir, results, title=f"Linear evaluation: {options.encoder}", notes=notes
    )
    head = results[0].checkpoint
    save_checkpoint(run_dir / "head.pt", head)
    files.append(run_dir / "head.pt")
    if encoder is not None:
        from export.compose import compose_tagger

        name = options.name or run_dir.name
        tagger = run_dir / f"{name}-tagger.onnx"
        compose_tagger(encoder, head, tagger, results[0].labels, head.head_config.task, name)
        files.append(tagger)
    summary = {
        "encoder": options.encoder,
        "items": len(data),
        "task": results[0].task,
        "results": [
            {"label_fraction": r.config.label_fraction, **r.to_dict()["summary"]} for r in results
        ],
        "files": [str(f) for f in files],
    }
    if extracted is not None:
        summary["features"] = {
            "store": extracted.store,
            "embedded": extracted.embedded,
            "unchanged": extracted.unchanged,
            "failed": [{"path": p, "reason": r} for p, r in extracted.failed],
        }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

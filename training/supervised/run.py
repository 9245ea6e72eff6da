"""`run_supervised`: labels -> decoded clips -> a SampleCNN per round and fraction -> report."""

from __future__ import annotations

import json

import numpy as np
import torch

from clmr_embed.atomic import write_text
from clmr_embed.errors import CheckpointError, ConfigError
from clmr_embed.resolution import resolve_model
from clmr_embed.scores import probabilities, track_scores
from training.checkpoint import save_checkpoint, weights_only
from training.linear.dataset import keep_existing
from training.linear.labels import read_labels
from training.linear.metrics import score
from training.linear.probe import EvalResult, FoldResult, head_task, summarise_folds
from training.linear.report import write_report
from training.linear.run import LinearResult, OnnxExport
from training.linear.splits import make_folds
from training.samplecnn import Tagger
from training.supervised.config import SupervisedRunConfig
from training.supervised.data import ClipAudio, clip_audio
from training.supervised.fit import Round, fit_round, round_checkpoint

ENCODER = "supervised"  # what summary.json names as the encoder: trained here, from random init
ROUNDS = "rounds"  # run folder's sub-folder of per-round checkpoints
PROTOCOL = (
    "SampleCNN and a linear head trained end to end from random init, one un-augmented random "
    "59049-sample crop per clip per batch (BCE for multilabel/soft, cross-entropy for "
    "multiclass); the weights of the lowest window-level validation loss are kept, BatchNorm "
    "statistics recomputed on training windows at each validation; clip score = "
    "the track mean (clmr_embed.scores.track_scores) of per-window probabilities (sigmoid or "
    "softmax) over all of the clip's back-to-back windows"
)


def run_supervised(config: SupervisedRunConfig, export: OnnxExport) -> LinearResult:
    """Train and score SampleCNN at every label fraction; write report, model.pt, tagger, summary.

    The result has `train linear`'s shape (its encoder is "supervised", it has no feature store).
    The tagger holds the first evaluation round's weights of the first label fraction.

    Raises:
        DataError, ConfigError, CheckpointError: bad labels, settings or resume state.
    """
    run_dir = config.output_dir
    _check_run_dir(config)
    data, missing = keep_existing(read_labels(config.labels))
    audio = clip_audio(data, config.train.encoder.sample_rate, progress=config.progress)
    results = tuple(evaluate_fraction(audio, config, f) for f in config.fractions)
    notes = {
        "labels": str(config.labels),
        "items": f"{len(audio.data)} ({missing + audio.dropped} without a window of audio dropped)",
        "model": "SampleCNN + linear head, trained end to end from random init",
        "steps": f"{config.train.max_steps} per round, {config.train.batch_size} clips a step",
    }
    title = "Supervised baseline: SampleCNN"
    files = write_report(run_dir, results, title=title, notes=notes)
    model = run_dir / "model.pt"
    save_checkpoint(model, weights_only(results[0].checkpoint))
    outputs = (*files, model)
    if config.tagger:
        name = config.name or run_dir.name
        tagger = run_dir / f"{name}-tagger.onnx"
        outputs += (export.tagger(resolve_model(model), results[0].checkpoint, tagger, name),)
    result = LinearResult(ENCODER, len(audio.data), audio.data.task, results, outputs, None)
    write_text(run_dir / "summary.json", json.dumps(result.to_dict(), indent=2))
    return result


def _check_run_dir(config: SupervisedRunConfig) -> None:
    """A fresh run must not replace another's checkpoints; a resumed one needs them."""
    rounds = config.output_dir / ROUNDS
    if rounds.exists() and not config.resume:
        raise ConfigError(f"{config.output_dir} already holds a run; resume it, or pick a new one")
    if config.resume and not rounds.exists():
        raise CheckpointError(f"cannot resume: {rounds} does not exist; start without --resume")


def evaluate_fraction(audio: ClipAudio, config: SupervisedRunConfig, fraction: float) -> EvalResult:
    """Train a SampleCNN per evaluation round at `fraction`; score it on the round's test clips."""
    settings = config.train.at_fraction(fraction)
    data = audio.data
    folds, checkpoints = [], []
    for fold in make_folds(data, settings.splits):
        folder = config.output_dir / ROUNDS / f"fraction-{fraction:g}" / fold.name
        r = Round(audio, fold, settings, folder, config.resume)
        tagger, progress = fit_round(r)
        probs = predict_tracks(tagger, audio, fold.test)
        s = score(data.targets[fold.test], probs, data.labels, data.task)
        sizes = {"train": len(fold.train), "valid": len(fold.valid), "test": len(fold.test)}
        epochs = progress.step // max(1, len(fold.train) // settings.batch_size)
        folds.append(
            FoldResult(fold.name, s.metrics, s.per_label, sizes, epochs, fold.effective_fraction)
        )
        checkpoints.append(round_checkpoint(r, tagger, progress))
    summary = summarise_folds(folds)
    return EvalResult(
        settings, data.task, data.labels, tuple(folds), summary, checkpoints[0], PROTOCOL
    )


def predict_tracks(tagger: Tagger, audio: ClipAudio, items: np.ndarray) -> np.ndarray:
    """Track scores of `items`, float64 [len(items), n_labels]: the track mean of the window
    probabilities, as `clmr-embed tag` computes them."""
    device = next(tagger.parameters()).device
    task = head_task(audio.data.task)
    rows = []
    with torch.no_grad():
        for item in items:
            windows = torch.from_numpy(audio.windows(int(item)))[:, None, :]
            logits = torch.cat([tagger(w.to(device))[1].cpu() for w in windows.split(64)])
            rows.append(track_scores(probabilities(logits.numpy(), task)))
    return np.asarray(rows, dtype=np.float64).reshape(len(items), len(audio.data.labels))

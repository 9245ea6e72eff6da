"""In-memory Python API: `Embedder(model).embed(samples, sr)` and `.tag(samples, sr)`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import ModelInfo
from clmr_embed.audio import load_audio, resample, to_mono
from clmr_embed.errors import AudioDecodeError, ModelArtifactError
from clmr_embed.model import OnnxModel, SessionConfig
from clmr_embed.registry import resolve_model
from clmr_embed.tagging import TagScore, probabilities, top_k, track_scores
from clmr_embed.windowing import frame, starts_seconds


@dataclass(frozen=True)
class TrackEmbedding:
    """Embeddings of one track."""

    embeddings: npt.NDArray[np.float32]  # (n_windows, dim), one row per window
    starts_s: npt.NDArray[np.float32]  # (n_windows,) window start times in seconds
    mean: npt.NDArray[np.float32]  # (dim,) the track vector: mean over windows
    padded: bool  # True when the audio was shorter than one window and was zero-padded
    logits: npt.NDArray[np.float32] | None = None  # (n_windows, n_labels) for tagger models


@dataclass(frozen=True)
class TagResult:
    """Tags of one track."""

    scores: npt.NDArray[np.float32]  # (n_labels,) mean per-window probability
    top: list[TagScore]  # the best labels, highest first
    window_probs: npt.NDArray[np.float32]  # (n_windows, n_labels) per-window probabilities
    starts_s: npt.NDArray[np.float32]  # (n_windows,) window start times in seconds
    padded: bool  # audio shorter than one window, zero-padded


def hop_samples(info: ModelInfo, hop_seconds: float | None) -> int:
    """Hop in samples at the model's rate; None means the window (CLMR's back-to-back chunks)."""
    if hop_seconds is None:
        return info.window_samples
    if not hop_seconds > 0:
        raise ModelArtifactError(f"--hop-seconds must be > 0, got {hop_seconds}")
    return max(1, round(hop_seconds * info.sample_rate))


class Embedder:
    """Embed and tag audio held in memory, with any exported clmr-embed ONNX model.

    Args:
        model: a registered model name, a path to an ONNX file, or None for the default model.
        device: "auto", "cpu" or "cuda".
        threads: onnxruntime threads (0: onnxruntime's choice).
    """

    def __init__(self, model: str | Path | None = None, device: str = "auto", threads: int = 0):
        self.model = OnnxModel(resolve_model(model), SessionConfig(device=device, threads=threads))
        self.info = self.model.info

    def _run(self, windows: npt.NDArray[np.float32], batch_size: int) -> tuple[np.ndarray, ...]:
        embs, logits = [], []
        for i in range(0, len(windows), batch_size):
            emb, logit = self.model.run(windows[i : i + batch_size])
            embs.append(emb)
            if logit is not None:
                logits.append(logit)
        emb_all = np.concatenate(embs).astype(np.float32)
        return emb_all, (np.concatenate(logits).astype(np.float32) if logits else None)

    def embed(
        self,
        samples: npt.NDArray[np.floating],
        sample_rate: int,
        hop_seconds: float | None = None,
        batch_size: int = 16,
    ) -> TrackEmbedding:
        """Embed float audio (n,) or (n, channels) at `sample_rate` Hz.

        The audio is downmixed by channel mean and resampled to the model's rate, then cut into
        the model's windows (a partial last window is dropped unless the audio is shorter than one
        window, when it is zero-padded).
        """
        mono = to_mono(np.asarray(samples, dtype=np.float32))
        if mono.size == 0:
            raise AudioDecodeError("the audio array is empty; pass at least one sample")
        if not np.isfinite(mono).all():
            raise AudioDecodeError("the audio array contains NaN/inf samples")
        if sample_rate != self.info.sample_rate:
            mono = resample(mono, sample_rate, self.info.sample_rate)
        framed = frame(mono, self.info.window_samples, hop_samples(self.info, hop_seconds))
        embeddings, logits = self._run(framed.windows, batch_size)
        return TrackEmbedding(
            embeddings=embeddings,
            starts_s=starts_seconds(framed.starts, self.info.sample_rate),
            mean=embeddings.mean(axis=0).astype(np.float32),
            padded=framed.padded,
            logits=logits,
        )

    def embed_file(self, path: Path, hop_seconds: float | None = None) -> TrackEmbedding:
        """Decode a file (any common format) and embed it."""
        samples, _ = load_audio(Path(path), self.info.sample_rate)
        return self.embed(samples, self.info.sample_rate, hop_seconds)

    def tag(
        self,
        samples: npt.NDArray[np.floating],
        sample_rate: int,
        top: int = 10,
        hop_seconds: float | None = None,
    ) -> TagResult:
        """Tag audio: per-window probabilities and their mean over the track."""
        if self.info.kind != "tagger":
            raise ModelArtifactError(
                f"{self.model.path} is an {self.info.kind}, not a tagger; pass a "
                "*-tagger.onnx file (clmr-embed export --head ...) to tag"
            )
        track = self.embed(samples, sample_rate, hop_seconds)
        return self._tag_result(track, top)

    def tag_file(self, path: Path, top: int = 10, hop_seconds: float | None = None) -> TagResult:
        """Decode a file and tag it."""
        samples, _ = load_audio(Path(path), self.info.sample_rate)
        return self.tag(samples, self.info.sample_rate, top, hop_seconds)

    def _tag_result(self, track: TrackEmbedding, top: int) -> TagResult:
        assert track.logits is not None  # taggers always return logits
        probs = probabilities(track.logits, self.info.task)
        scores = track_scores(probs)
        return TagResult(
            scores=scores,
            top=top_k(scores, self.info.labels, top),
            window_probs=probs,
            starts_s=track.starts_s,
            padded=track.padded,
        )

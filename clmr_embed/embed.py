"""The Python API: `Embedder(model)` embeds and tags audio arrays and files with an ONNX model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.audio import (
    WindowSpec,
    WindowStream,
    frame,
    resample,
    starts_seconds,
    to_mono,
)
from clmr_embed.digest import ModelFile
from clmr_embed.engines import Engine, EngineConfig, open_engine
from clmr_embed.errors import AudioDecodeError, ModelArtifactError
from clmr_embed.pooling import TrackMean, track_mean
from clmr_embed.resolution import resolve_model_file
from clmr_embed.scores import TagScore, best_tags, probabilities, track_scores

BATCH_SIZE = 16  # windows per onnxruntime call (extract's default too)
Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TrackEmbedding:
    """Embeddings of one track."""

    embeddings: Array  # (n_windows, dim), one row per window
    starts_s: Array  # (n_windows,) window start times in seconds
    mean: Array  # (dim,) the track vector: mean over windows (the store's rule)
    padded: bool  # the audio was shorter than one window and was zero-padded
    silent: bool  # digital silence: every sample is exactly zero
    logits: Array | None = None  # (n_windows, n_labels) for tagger models
    flags: tuple[str, ...] = ()  # "short", "silent", "truncated", "gaps" (as extract stores them)


@dataclass(frozen=True)
class TagResult:
    """Tags of one track."""

    scores: Array  # (n_labels,) mean per-window probability
    tags: list[TagScore]  # the best labels, highest first
    n_windows: int  # windows the scores average over
    padded: bool  # audio shorter than one window, zero-padded
    silent: bool  # digital silence: the tags mean nothing
    window_probs: Array | None = None  # (n_windows, n_labels); None when not asked to keep them
    starts_s: Array | None = None  # (n_windows,) window start times; None like window_probs
    flags: tuple[str, ...] = ()  # "short", "silent", "truncated", "gaps" (as extract stores them)


def _memory_flags(padded: bool, silent: bool) -> tuple[str, ...]:
    """The flags of audio given in memory (no header, so never truncated)."""
    return (("short",) if padded else ()) + (("silent",) if silent else ())


class Embedder:
    """Embed and tag audio with any exported clmr-embed ONNX model.

    Args:
        model: a registered model name, a path to an ONNX file (or a ModelFile already
            resolved and hashed), or None for the default model.
        device: "auto", "cpu" or "cuda".
        threads: engine threads (0: the engine's choice, all cores).
        precision: "fp32" (the default: onnxruntime, exactly the reference numbers), "bf16",
            "int8" or "auto" (the fastest path that passed its check on this machine).
        engine: "onnxruntime" or "openvino"; None lets the precision choose.

    Raises:
        ConfigError: an impossible precision/engine/device choice.
        MissingDependencyError: the engine it needs is not installed (names the extra).
        PrecisionError: the path failed its first-use check against fp32 on this machine.
        ModelArtifactError: a missing int8 file (says how to build it), or a bad model file.
    """

    def __init__(
        self,
        model: str | Path | ModelFile | None = None,
        device: str = "auto",
        threads: int = 0,
        precision: str = "fp32",
        engine: str | None = None,
    ):
        config = EngineConfig(precision=precision, engine=engine, device=device, threads=threads)
        self.model: Engine = open_engine(resolve_model_file(model), config)  # .precision: what runs
        self.info = self.model.info

    def embed(
        self,
        samples: npt.NDArray[np.floating],
        sample_rate: int,
        hop_seconds: float | None = None,
        batch_size: int = BATCH_SIZE,
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
        spec = self._spec(hop_seconds)
        framed = frame(mono, spec.window_samples, spec.hop_samples)
        embeddings, logits = self._run(framed.windows, batch_size)
        return TrackEmbedding(
            embeddings=embeddings,
            starts_s=starts_seconds(framed.starts, spec.sample_rate),
            mean=track_mean(embeddings),
            padded=framed.padded,
            silent=not mono.any(),
            logits=logits,
            flags=_memory_flags(framed.padded, not mono.any()),
        )

    def embed_file(
        self, path: Path, hop_seconds: float | None = None, batch_size: int = BATCH_SIZE
    ) -> TrackEmbedding:
        """Decode a file (any common format) and embed it, streaming as extract does."""
        stream = WindowStream(Path(path), self._spec(hop_seconds))
        embeddings, starts, logits = [], [], []
        for chunk in stream:
            chunk_embeddings, chunk_logits = self._run(chunk.windows, batch_size)
            embeddings.append(chunk_embeddings)
            starts.append(chunk.starts)
            if chunk_logits is not None:
                logits.append(chunk_logits)
        all_embeddings = np.concatenate(embeddings)
        return TrackEmbedding(
            embeddings=all_embeddings,
            starts_s=starts_seconds(np.concatenate(starts), stream.spec.sample_rate),
            mean=track_mean(all_embeddings),
            padded=stream.decoded.padded,
            silent=stream.decoded.silent,
            logits=np.concatenate(logits) if logits else None,
            flags=stream.decoded.flags,
        )

    def tag(
        self,
        samples: npt.NDArray[np.floating],
        sample_rate: int,
        top_k: int = 10,
        hop_seconds: float | None = None,
    ) -> TagResult:
        """Tag audio in memory: per-window probabilities and their mean over the track."""
        self.require_tagger()
        track = self.embed(samples, sample_rate, hop_seconds)
        assert track.logits is not None  # taggers always return logits
        probs = probabilities(track.logits, self.info.task)
        scores = track_scores(probs)
        return TagResult(
            scores=scores,
            tags=best_tags(scores, self.info.labels, top_k),
            n_windows=len(probs),
            padded=track.padded,
            silent=track.silent,
            window_probs=probs,
            starts_s=track.starts_s,
            flags=track.flags,
        )

    def tag_file(
        self,
        path: Path,
        top_k: int = 10,
        hop_seconds: float | None = None,
        segments: bool = True,
    ) -> TagResult:
        """Decode and tag a file in bounded memory, whatever its length.

        Windows stream through the model chunk by chunk; only the running mean is kept, plus the
        per-window probabilities and start times when `segments` asks for them.
        """
        self.require_tagger()
        stream = WindowStream(Path(path), self._spec(hop_seconds))
        mean = TrackMean(len(self.info.labels))
        kept_probs, kept_starts = [], []
        for chunk in stream:
            _, logits = self._run(chunk.windows, BATCH_SIZE)
            assert logits is not None  # taggers always return logits
            probs = probabilities(logits, self.info.task)
            mean.add(probs)
            if segments:
                kept_probs.append(probs)
                kept_starts.append(chunk.starts)
        scores = mean.value()
        return TagResult(
            scores=scores,
            tags=best_tags(scores, self.info.labels, top_k),
            n_windows=mean.count,
            padded=stream.decoded.padded,
            silent=stream.decoded.silent,
            window_probs=np.concatenate(kept_probs) if segments else None,
            starts_s=(
                starts_seconds(np.concatenate(kept_starts), stream.spec.sample_rate)
                if segments
                else None
            ),
            flags=stream.decoded.flags,
        )

    def _spec(self, hop_seconds: float | None) -> WindowSpec:
        return WindowSpec.from_hop_seconds(
            self.info.sample_rate, self.info.window_samples, hop_seconds
        )

    def require_tagger(self) -> None:
        """Refuse a model without a head: only a tagger has labels to score.

        Raises:
            ModelArtifactError: naming the model and the file to tag with.
        """
        if self.info.kind != "tagger":
            raise ModelArtifactError(
                f"{self.model.path} is an {self.info.kind}, not a tagger; tag with a "
                "*-tagger.onnx file (an export with a head)"
            )

    def _run(self, windows: Array, batch_size: int) -> tuple[Array, Array | None]:
        """Embeddings (and logits of a tagger) of windows, `batch_size` windows per model call."""
        embeddings, logits = [], []
        for i in range(0, len(windows), batch_size):
            batch_embeddings, batch_logits = self.model.run(windows[i : i + batch_size])
            embeddings.append(batch_embeddings)
            if batch_logits is not None:
                logits.append(batch_logits)
        all_logits = np.concatenate(logits).astype(np.float32) if logits else None
        return np.concatenate(embeddings).astype(np.float32), all_logits

"""New audio embedded like a store's tracks: the store's model and hop, any other model refused."""

from __future__ import annotations

from pathlib import Path

from clmr_embed.digest import ModelFile
from clmr_embed.embed import Embedder, TrackEmbedding
from clmr_embed.errors import ModelArtifactError
from clmr_embed.registry import MODELS
from clmr_embed.resolution import resolve_model_file
from clmr_embed.search.vectors import StoreView


def store_model(store: StoreView, model: str | Path | ModelFile | None = None) -> ModelFile:
    """The ONNX file that made the store: `model` (a name or path) or the store's model name.

    Raises:
        ModelArtifactError: the store's model is not a registered name and no file was given,
            or the file's sha256 is not the one recorded in the store.
    """
    header = store.header
    if model is None and header.model_name not in MODELS:
        raise ModelArtifactError(
            f"store {store.path} was made with model {header.model_name!r} "
            f"(sha256 {header.model_sha256[:16]}…), which is not a registered name; "
            "pass the ONNX file that made it"
        )
    file = resolve_model_file(model or header.model_name)
    if file.sha256 != header.model_sha256:
        raise ModelArtifactError(
            f"model {file.path} (sha256 {file.sha256[:16]}…) did not make store "
            f"{store.path} (model {header.model_name!r}, sha256 {header.model_sha256[:16]}…); "
            "embeddings of different models are not comparable: use the store's model"
        )
    return file


def store_hop_seconds(store: StoreView) -> float | None:
    """The store's hop for Embedder (None: back-to-back windows, the default)."""
    header = store.header
    if header.hop_samples == header.window_samples:
        return None
    return header.hop_samples / header.sample_rate


class StoreEmbedder:
    """Embeds audio files exactly as the store's tracks were (model, rate, window, hop, and
    a low precision with its engine; fp32 runs on onnxruntime, as every fp32 engine agrees)."""

    def __init__(
        self, store: StoreView, model: str | Path | ModelFile | None = None, device: str = "auto"
    ):
        header = store.header
        low = header.precision != "fp32"
        self.embedder = Embedder(
            store_model(store, model),
            device=device,
            precision=header.precision,
            engine=header.engine if low else None,
        )
        self.hop_seconds = store_hop_seconds(store)

    def embed_file(self, path: Path) -> TrackEmbedding:
        """Decode and embed one file (AudioDecodeError if it is not usable audio)."""
        return self.embedder.embed_file(Path(path), self.hop_seconds)

"""The onnxruntime engine: the fp32 reference (OnnxModel) and the int8 file on onnxruntime."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import refuse_head
from clmr_embed.digest import ModelFile
from clmr_embed.engines.engine import EngineConfig, Output
from clmr_embed.engines.variant import check_variant, variant_path
from clmr_embed.model import OnnxModel, SessionConfig, import_onnxruntime


class OnnxRuntimeEngine:
    """A model on onnxruntime at fp32 (exactly OnnxModel's numbers) or from its int8 file.

    Args:
        model: the fp32 encoder or tagger ONNX file (resolved and hashed once by the caller).
        precision: "fp32" or "int8" (the int8 file beside `model`, see variant.int8_path).
        config: device, threads and spinning (precision and engine are given here).

    Raises:
        ModelArtifactError: a missing or stale int8 file, or a file breaking the contract.
    """

    engine = "onnxruntime"

    def __init__(
        self, model: ModelFile, precision: str = "fp32", config: EngineConfig | None = None
    ):
        config = config or EngineConfig()
        self.sha256 = model.sha256
        self.path = variant_path(model.path, precision)
        session = SessionConfig(config.device, config.threads, spin=config.spin)
        self.model = OnnxModel(self.path, session)
        metadata = self.model.session.get_modelmeta().custom_metadata_map
        check_variant(model.path, precision, self.sha256, metadata)
        self.info = self.model.info
        refuse_head(self.path, self.info.kind)
        self.version = self.library_version()
        self.precision = precision
        self.detail = f"{precision} on {', '.join(self.model.providers)}"

    @staticmethod
    def library_version() -> str:
        """The installed onnxruntime's version."""
        return str(import_onnxruntime().__version__)

    def run(self, windows: npt.NDArray[np.float32]) -> Output:
        """(embeddings, logits or None) of float32 (batch, window) audio."""
        return self.model.run(windows)

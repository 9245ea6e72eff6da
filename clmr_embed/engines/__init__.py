"""Inference engines: onnxruntime and OpenVINO at fp32, bf16 or int8, checked on first use.

engine = open_engine(ModelFile.hashed(path), EngineConfig(precision="bf16"))
embeddings, logits = engine.run(windows)  # engine.precision: what actually ran
"""

from clmr_embed.engines.choice import check_choice, open_engine
from clmr_embed.engines.engine import ENGINES, PRECISIONS, Engine, EngineConfig, PrecisionError

__all__ = [
    "ENGINES",
    "PRECISIONS",
    "Engine",
    "EngineConfig",
    "PrecisionError",
    "check_choice",
    "open_engine",
]

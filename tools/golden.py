"""The golden embedding of the bundled model: a generated signal and its expected vector.

Regenerate after a deliberate model change: `python -m tools.golden` (tools/default_model.py
does it when it installs a new model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clmr_embed.atomic import write_text
from clmr_embed.digest import file_sha256
from clmr_embed.embed import Embedder
from clmr_embed.resolution import resolve_model

# Read by tests/clmr_embed (the bundled model must still produce it); written here, never by tests.
GOLDEN_FILE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "golden_embedding.json"
RATE = 22050  # Hz, the bundled model's rate, so no resampling is involved
SAMPLES = 59049  # one window


def golden_signal() -> np.ndarray:
    """A deterministic 2.68-s test signal: a decaying A-major chord, a kick-like pulse and noise."""
    t = np.arange(SAMPLES) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    pulse = np.sin(2 * np.pi * 60.0 * t) * np.exp(-12.0 * (t % 0.5))
    noise = np.random.default_rng(1234).standard_normal(SAMPLES) * 0.02
    return (0.4 * chord * np.exp(-0.5 * t) + 0.3 * pulse + noise).astype(np.float32)


def golden_embedding(model: Path | str | None = None) -> np.ndarray:
    """The model's embedding of `golden_signal()` (the default model when None)."""
    embedder = Embedder(model, device="cpu", threads=1)
    return embedder.embed(golden_signal(), RATE).embeddings[0]


def write_golden(model: Path) -> Path:
    """Store the embedding of `golden_signal()` by `model` with the model's sha256."""
    vector = golden_embedding(model)
    payload = {
        "model_sha256": file_sha256(model),
        "signal": "tools.golden.golden_signal()",
        "embedding": [float(f"{v:.7g}") for v in vector],
    }
    write_text(GOLDEN_FILE, json.dumps(payload, indent=0) + "\n")
    return GOLDEN_FILE


if __name__ == "__main__":
    print(write_golden(resolve_model(None)))

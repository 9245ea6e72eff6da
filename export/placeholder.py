"""The untrained placeholder tagger `clmr-untrained`: the random-init baseline, built on demand.

It was the bundled default until clmr-free (docs/models.md); now it is what the default model is
compared with (tests/export/test_default_model.py, tools/default_model.py).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from clmr_embed.artifact import TAGGER_IO
from clmr_embed.atomic import atomic_path
from clmr_embed.constants import MTAT_TAGS
from export.info import Provenance, Shape, model_info
from export.onnx import export_tagger
from export.verify import Artifact, ParityRow, check_parity
from training.config import EncoderConfig, HeadConfig
from training.samplecnn import SampleCNN, Tagger, TaggerHead

NAME = "clmr-untrained"
SEED = 0
LICENCE = "MIT (clmr-embed code); random weights, no training data"
DESCRIPTION = (
    "UNTRAINED placeholder: a randomly initialised (seed 0) full-width SampleCNN and a random "
    "linear 50-tag MagnaTagATune head. Its embeddings and tags are meaningless; it only lets "
    "clmr-embed run end to end. Export a trained checkpoint with `clmr-embed export`. "
    "clmr.source_checkpoint_sha256 is the sha256 of the weights' float32 bytes in state-dict "
    "order (there is no checkpoint file)."
)


def build_placeholder() -> tuple[SampleCNN, TaggerHead]:
    """The random (seed 0) full-width SampleCNN and 50-tag linear head, in eval mode."""
    torch.manual_seed(SEED)
    encoder = SampleCNN(EncoderConfig()).eval()
    head = TaggerHead(HeadConfig(in_dim=encoder.config.embedding_dim, n_labels=len(MTAT_TAGS)))
    return encoder, head.eval()


def weights_sha256(*modules: torch.nn.Module) -> str:
    """sha256 over every state-dict tensor's bytes, in order (a stand-in for a file hash)."""
    digest = hashlib.sha256()
    for module in modules:
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_placeholder(output: Path) -> list[ParityRow]:
    """Export the placeholder tagger to `output` (overwriting it) and check it against torch.

    Returns:
        The onnxruntime-vs-torch parity rows (batch sizes 1, 3, 17).
    """
    encoder, head = build_placeholder()
    provenance = Provenance(
        licence=LICENCE,
        source_sha256=weights_sha256(encoder, head),
        description=DESCRIPTION,
        declared=False,
    )
    shape = Shape.of_encoder(encoder.config)
    info = model_info("tagger", NAME, shape, provenance, MTAT_TAGS, "multilabel")
    reference = Tagger(encoder, head).eval()
    with atomic_path(output) as tmp:  # published only once it matches torch
        export_tagger(encoder, head, tmp, info)
        artifact = Artifact(tmp, TAGGER_IO, (1, shape.window_samples), reference, name=output.name)
        return check_parity([artifact])


def main(argv: list[str] | None = None) -> list[ParityRow]:
    """`python -m export.placeholder --output PATH`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True, help="the .onnx to write")
    args = parser.parse_args(argv)
    return write_placeholder(args.output)


if __name__ == "__main__":
    for row in main():
        print(f"{row.artifact} {row.backend} batch {row.batch}: max diff {row.max_abs_diff:.1e}")

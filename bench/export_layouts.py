"""Export a full-width checkpoint in every supported layout; print parity figures and export time.

Not a test. Random weights stand in for the official encoder (whose release assets cannot be had
here) in each official key layout; the head is the real official MTAT head when ../shared has it.
Usage: python bench/export_layouts.py [--head ../shared/weights/finetuner_checkpoint_200.pt]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from export.api import ExportConfig, run_export
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig
from training.samplecnn import SampleCNN

SHARED_HEAD = (
    Path(__file__).resolve().parents[1].parent / "shared/weights/finetuner_checkpoint_200.pt"
)


def layouts(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """The same encoder weights in each checkpoint layout clmr-embed imports."""
    projector = {
        "projector.0.weight": torch.randn(512, 512),
        "projector.2.weight": torch.randn(128, 512),
    }
    conv = {}
    for key, value in state.items():
        block, rest = key.split(".", 2)[1], key.split(".", 2)[2]
        conv[f"encoder.conv{int(block) + 1}.{rest}"] = value
    lightning = {f"model.encoder.{k}": v for k, v in state.items()}
    lightning |= {f"encoder.{k}": v for k, v in state.items()}
    lightning |= {f"model.{k}": v for k, v in projector.items()}
    return {
        "raw v1 (10,000-epoch release)": {f"encoder.{k}": v for k, v in state.items()} | projector,
        "conv1..conv11 (1550-epoch release)": conv | projector,
        "PyTorch Lightning (v2)": {"state_dict": lightning, "pytorch-lightning_version": "1.9.0"},
        "bare SampleCNN state dict": dict(state),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, default=SHARED_HEAD if SHARED_HEAD.exists() else None)
    args = parser.parse_args()
    torch.manual_seed(0)
    state = SampleCNN(EncoderConfig()).state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for i, (name, payload) in enumerate(layouts(state).items()):
            files[name] = Path(tmp) / f"layout{i}.pt"
            torch.save(payload, files[name])
        ours = Path(tmp) / "ours.pt"
        save_checkpoint(
            ours, Checkpoint(encoder_config=EncoderConfig(), encoder_state=state, step=1)
        )
        files["clmr-embed checkpoint"] = ours
        for name, path in files.items():
            out = Path(tmp) / f"out-{path.stem}"
            report = run_export(ExportConfig(checkpoint=path, head=args.head, output_dir=out))
            worst = {}
            for row in report.parity:
                kind = row.artifact.rsplit("-", 1)[-1].split(".")[0] + f"/{row.backend}"
                worst[kind] = max(worst.get(kind, 0.0), row.max_abs_diff)
            shown = ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items()))
            print(
                f"{name:<36} {report.seconds:5.1f} s  {len(report.files)} files  max|diff|: {shown}"
            )


if __name__ == "__main__":
    main()

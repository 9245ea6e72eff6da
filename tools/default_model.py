"""Build the bundled default model `clmr-free`: our pre-trained encoder + a teacher-distilled head.

    python -m tools.default_model --checkpoint runs/free-cpu/latest.pt \
        --labels /work/data/free-music/teacher.csv --corpus /work/data/free-music --install

1. slims the pre-training checkpoint to weights only (RUN_DIR/clmr-free.pt; the install copies it
   to checkpoints/clmr-free.pt, committed, ~11 MB: what a later session continues from and what
   the model's source hash names);
2. trains the 50-tag head on the teacher's soft targets over the frozen encoder (`train linear`,
   the manifest's own album-grouped split);
3. exports encoder + head to one tagger ONNX with the full metadata, parity-checked;
4. scores it: agreement with the teacher on the held-out albums, excerpt retrieval on the demo
   songs against the random-init encoders (tools.model_eval);
5. with --install, only if the install gate passes (tools.install_gate: GTZAN linear-probe
   accuracy and held-out-package retrieval MRR each at least the installed model's, measured
   side by side before anything is built): copies the slim checkpoint to checkpoints/ and the
   tagger to clmr_embed/models/clmr-free.onnx,
   rebuilds its int8 sibling clmr-free.int8.onnx (tools.precision), rewrites the golden
   embedding (tools.golden), and writes docs/models.json (the card's figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clmr_embed.atomic import atomic_path, write_text
from clmr_embed.digest import file_sha256
from export.api import ExportConfig, run_export
from export.linear import LinearExport
from export.placeholder import write_placeholder
from tools.golden import write_golden
from tools.install_gate import INSTALLED, scores, verdict
from tools.model_eval import DEMO_SONGS, agreement, retrieval
from tools.precision import build_int8, quality_gate
from training.checkpoint import Checkpoint, save_checkpoint, weights_only
from training.linear.baselines import audio_windows, random_encoder_checkpoint
from training.linear.config import LinearEvalConfig, LinearRunConfig
from training.linear.run import LinearResult, run_linear
from training.weights import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
NAME = "clmr-free"
SLIM = ROOT / "checkpoints" / f"{NAME}.pt"
BUNDLED = ROOT / "clmr_embed" / "models" / f"{NAME}.onnx"
FIGURES = ROOT / "docs" / "models.json"
DEMO = ROOT.parent / "shared" / "audio" / "clmr_demo"
LICENCE = (
    "Weights: MIT (clmr-embed). Encoder and 50-tag head both distilled from musicnn MTT_musicnn "
    "(ISC, MTG-UPF), which was trained on MagnaTagATune (audio CC BY-NC-SA): check MTAT's terms "
    "before commercial use. Distillation audio: freely licensed Debian game soundtracks (GPL-2+, "
    "CC BY-SA 3.0/4.0, CC BY 3.0/4.0, CC0; if weights count as derivative works, their "
    "share-alike terms apply). Details: docs/models.md"
)


def slim_checkpoint(source: Path, target: Path) -> Checkpoint:
    """Keep the weights, configs and step of a pre-training checkpoint; drop optimiser and RNG."""
    full = load_checkpoint(source)
    slim = weights_only(full, slimmed_from=source.name, run_state=full.extra.get("run_state"))
    save_checkpoint(target, slim)
    return slim


def describe(ckpt: Checkpoint) -> str:
    """The metadata description of the tagger: which recipe trained the encoder, for how long."""
    config = ckpt.train_config
    if config.get("contrastive_weight", 1.0) == 0 or "jitter_s" in config:  # "jitter_s": the
        # GPU trial's record (../shared/tools/gpu_distill), the product's runs say the weight
        windows = config.get("windows") or ckpt.step * config.get("batch_size", 0)
        init = config.get("init_weights")  # a continued run names what it started from
        start = f"continued from {Path(init).stem}" if init else "trained from random init"
        anchor = f", anchor weight {config['anchor_weight']}" if config.get("anchor_weight") else ""
        return (
            f"SampleCNN (CLMR architecture) {start} by clean-view distillation of musicnn MTT "
            f"max_pool (not CLMR's SimCLR): {ckpt.step} steps, {windows:,} windows of freely "
            f"licensed game music (Debian){anchor}; 50-tag MagnaTagATune head trained on musicnn "
            "pseudo-labels; figures and limits in docs/models.md"
        )
    batch = config.get("batch_size", "?")
    return (
        f"CLMR SampleCNN pre-trained by clmr-embed with SimCLR for {ckpt.step} steps "
        f"(batch {batch} pairs) on freely licensed game music (Debian), 50-tag "
        "MagnaTagATune head trained on musicnn pseudo-labels; see docs/models.md"
    )


def train_head(encoder: Path, labels: Path, run_dir: Path) -> tuple[Path, LinearResult]:
    """`clmr-embed train linear --split given` on the teacher manifest; returns head.pt, result."""
    config = LinearRunConfig(
        encoder=str(encoder),
        labels=labels,
        output_dir=run_dir,
        probe=LinearEvalConfig(split="given"),
    )
    return run_dir / "head.pt", run_linear(config, LinearExport())


def export_tagger(encoder: Path, head: Path, out_dir: Path, description: str) -> Path:
    """`clmr-embed export` of encoder + head as NAME-tagger.onnx with our licence note."""
    config = ExportConfig(
        checkpoint=encoder,
        head=head,
        output_dir=out_dir,
        name=NAME,
        licence=LICENCE,
        description=description,
        force=True,
    )
    report = run_export(config)
    worst = max(row.max_abs_diff for row in report.parity)
    print(f"exported {out_dir / f'{NAME}-tagger.onnx'} (parity max |diff| {worst:.1e})")
    return out_dir / f"{NAME}-tagger.onnx"


def baselines(out_dir: Path, demo: Path) -> dict[str, Path]:
    """Random-init encoders to compare with: the seed-0 placeholder and a BN-recalibrated one."""
    placeholder = out_dir / "random-init.onnx"
    write_placeholder(placeholder)
    ckpt = random_encoder_checkpoint(audio_windows([demo / n for n in DEMO_SONGS], per_file=32))
    save_checkpoint(out_dir / "random-bn.pt", ckpt)
    run_export(ExportConfig(checkpoint=out_dir / "random-bn.pt", output_dir=out_dir, force=True))
    return {"random_init": placeholder, "random_init_bn": out_dir / "random-bn-encoder.onnx"}


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Steps 1-4; returns the figures."""
    start = time.perf_counter()
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    slim_path = run_dir / f"{NAME}.pt"  # the committed one changes only at install time
    slim = slim_checkpoint(args.checkpoint, slim_path)
    head, linear = train_head(slim_path, args.labels, run_dir / "head")
    tagger = export_tagger(slim_path, head, run_dir / "export", describe(slim))
    models = {NAME: tagger, **baselines(run_dir / "baselines", args.demo)}
    figures = {
        "model": NAME,
        "tagger_sha256": file_sha256(tagger),
        "tagger_bytes": tagger.stat().st_size,
        "checkpoint_sha256": file_sha256(slim_path),
        "pretrain_steps": slim.step,
        "pretrain_config": slim.train_config,
        "pretrain_run_state": slim.extra.get("run_state"),
        "head_training": linear.to_dict()["results"],
        "agreement": agreement(tagger, args.labels),
        "retrieval": retrieval(models, args.demo),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    write_text(run_dir / "figures.json", json.dumps(figures, indent=2))
    return figures


def install(run_dir: Path, figures: dict[str, Any], corpus: Path) -> None:
    """Step 5: ship the tagger and its int8 sibling (rebuilt: it names the fp32 file's sha256),
    refresh the golden embedding, record the figures."""
    for source, target in (
        (run_dir / f"{NAME}.pt", SLIM),
        (run_dir / "export" / f"{NAME}-tagger.onnx", BUNDLED),
    ):
        with atomic_path(target) as tmp:  # package data: the umask's mode, readable by users
            shutil.copyfile(source, tmp)
    int8 = build_int8(BUNDLED, corpus)  # calibrated on the corpus minus its held-out packages
    int8["path"] = str(Path(int8["path"]).relative_to(ROOT))  # the card names repo paths
    checked = quality_gate(BUNDLED)  # what the runtime's first-use check will find on the demo
    int8["precision_gate_demo_cosine_min"] = {
        f"{engine} {precision}": round(report.cosine_min, 4)
        for (engine, precision), report in checked.items()
        if precision == "int8"
    }
    if not all(r.passed for r in checked.values()):
        print(f"warning: a low-precision path fails the precision gate: {int8}")
    print(f"installed {BUNDLED}, {int8['path']} and {write_golden(BUNDLED)}")
    write_text(FIGURES, json.dumps({**figures, "int8": int8}, indent=2) + "\n")


def gate(candidate: Path, corpus: Path) -> dict[str, Any]:
    """The install gate's scores of both models; SystemExit naming why when it refuses."""
    found = scores([candidate, INSTALLED], corpus)
    reasons = verdict(found[candidate], found[INSTALLED])
    if reasons:
        raise SystemExit(f"not installed: {'; '.join(reasons)}")
    return {"candidate": vars(found[candidate]), "installed": vars(found[INSTALLED])}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tools.default_model`."""
    parser = argparse.ArgumentParser(prog="python -m tools.default_model", description=__doc__)
    parser.add_argument("--checkpoint", required=True, type=Path, help="pre-training checkpoint")
    parser.add_argument("--labels", required=True, type=Path, help="teacher manifest (CSV)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/default-model"), help="work dir")
    parser.add_argument("--demo", type=Path, default=DEMO, help="the CLMR demo songs folder")
    parser.add_argument("--corpus", type=Path, help="free-music folder (the gate's held-out set)")
    parser.add_argument("--install", action="store_true", help="ship it (see step 5)")
    args = parser.parse_args(argv)
    if args.install and args.corpus is None:
        parser.error("--install needs --corpus: the install gate probes its held-out packages")
    if not args.labels.is_file():  # before the gate's minutes, not after them
        parser.error(f"--labels {args.labels} does not exist; build it with tools.teacher_labels")
    passed = gate(args.checkpoint, args.corpus) if args.install else None
    figures = build(args)
    if passed is not None:
        install(args.run_dir, {**figures, "install_gate": passed}, args.corpus)
    agree, ret = figures["agreement"], figures["retrieval"]
    print(json.dumps({"agreement_top5": agree["top5"]["tag_roc_auc"], "retrieval": ret}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

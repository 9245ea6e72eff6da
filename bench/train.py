"""Benchmark of one pre-training step: windows/s and peak memory per batch size and precision.

Augmentation (AugmentChain on both views) is timed apart from the model step (forward, NT-Xent,
backward, Adam). Random audio stands in for the cache, so only compute is measured.

    .venv/bin/python bench/train.py                   # CPU, batch 8/16/32, fp32 vs bf16
    .venv/bin/python bench/train.py --device cuda --batches 48 96 --precisions fp32 bf16 fp16
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES  # noqa: E402
from training.config import CLMR_CHANNELS, EncoderConfig, ProjectorConfig  # noqa: E402
from training.pretrain.augment import AugmentChain  # noqa: E402
from training.pretrain.config import AugmentConfig  # noqa: E402
from training.pretrain.loop import autocast  # noqa: E402
from training.pretrain.objectives import SimCLR, nt_xent_loss  # noqa: E402
from training.samplecnn import Projector, SampleCNN  # noqa: E402

TINY_CHANNELS = (8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)


@dataclass(frozen=True)
class Row:
    """One measured configuration."""

    device: str  # "cpu" or "cuda"
    batch: int  # pairs per step (2 x batch windows through the encoder)
    precision: str  # fp32 / bf16 / fp16
    augment_ms: float  # both views, per step
    step_ms: float  # forward + loss + backward + optimiser, per step
    windows_per_s: float  # 2 x batch / (augment + step)
    model_windows_per_s: float  # 2 x batch / step (augmentation excluded)
    peak_rss_mb: float  # process peak RSS during this configuration
    cuda_peak_mb: float  # torch.cuda.max_memory_allocated, 0 on CPU


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each configuration gets its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device: torch.device, batch: int, precision: str, steps: int, channels: tuple) -> Row:
    torch.manual_seed(0)
    encoder = SampleCNN(EncoderConfig(channels=channels))
    model = SimCLR(encoder, Projector(ProjectorConfig(in_dim=channels[-1]))).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    augment = AugmentChain(AugmentConfig(), SAMPLE_RATE).to(device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    x_i = (0.1 * torch.randn(batch, 1, WINDOW_SAMPLES)).to(device)
    x_j = (0.1 * torch.randn(batch, 1, WINDOW_SAMPLES)).to(device)
    generator = torch.Generator(device).manual_seed(0)
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    aug_s = step_s = 0.0
    for step in range(steps + 1):  # step 0 warms up (allocations, kernel selection)
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            a_i, a_j = augment(x_i, generator), augment(x_j, generator)
        sync(device)
        t1 = time.perf_counter()
        with autocast(device, precision):
            _, _, z_i, z_j = model(a_i, a_j)
        loss = nt_xent_loss(z_i.float(), z_j.float(), 0.5)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sync(device)
        t2 = time.perf_counter()
        if step > 0:
            aug_s, step_s = aug_s + t1 - t0, step_s + t2 - t1
    windows = 2 * batch * steps
    cuda_peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
    return Row(
        device.type,
        batch,
        precision,
        1e3 * aug_s / steps,
        1e3 * step_s / steps,
        windows / (aug_s + step_s),
        windows / step_s,
        peak_rss_mb(),
        cuda_peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--tiny", action="store_true", help="reduced-width encoder (tests' size)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    channels = TINY_CHANNELS if args.tiny else CLMR_CHANNELS
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"encoder {'tiny' if args.tiny else 'full (CLMR)'}, {args.steps} timed steps each"
    )
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    header = (
        f"{'device':6} {'batch':>5} {'prec':>5} {'augment ms':>10} {'step ms':>9} "
        f"{'win/s':>7} {'model win/s':>11} {'peak RSS MB':>11} {'CUDA MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for device in devices:
        for batch in args.batches:
            for precision in args.precisions:
                if precision == "fp16" and device == "cpu":
                    continue  # fp16 needs CUDA's GradScaler; bf16 is the CPU option
                r = measure(torch.device(device), batch, precision, args.steps, channels)
                print(
                    f"{r.device:6} {r.batch:5d} {r.precision:>5} {r.augment_ms:10.0f} "
                    f"{r.step_ms:9.0f} {r.windows_per_s:7.1f} {r.model_windows_per_s:11.1f} "
                    f"{r.peak_rss_mb:11.0f} {r.cuda_peak_mb:8.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

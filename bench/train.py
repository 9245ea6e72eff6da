"""Benchmark of one pre-training step, encoder layouts side by side, against the bf16 GEMM rate.

The layouts' steps (forward, NT-Xent, backward, Adam) run interleaved in one process, repetition
by repetition, and medians are reported, so a busy machine slows each alike; the bf16 GEMM rate
is measured between the repetitions too. Augmentation (AugmentChain on both views) is timed apart.
Random audio stands in for the cache. A profiled step per layout splits its time into
convolutions / BN+ReLU+pool / augmentation / optimiser / other.

    .venv/bin/python bench/train.py                        # CPU, 32 pairs (configs/pretrain-cpu)
    .venv/bin/python bench/train.py --batches 32 48 64 --reps 5
    .venv/bin/python bench/train.py --precision fp32 --tiny
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES  # noqa: E402
from training.config import CLMR_CHANNELS, EncoderConfig, ProjectorConfig  # noqa: E402
from training.layout import choose_layout, cpu_flags  # noqa: E402
from training.pretrain.augment import AugmentChain  # noqa: E402
from training.pretrain.config import AugmentConfig  # noqa: E402
from training.pretrain.loop import autocast  # noqa: E402
from training.pretrain.objectives import SimCLR, nt_xent_loss  # noqa: E402
from training.samplecnn import Projector, SampleCNN  # noqa: E402

TINY_CHANNELS = (8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)
GEMM_N = 2048  # square bf16 matmul for the machine's GEMM rate
# Profiler op names per bucket (forward and backward kernels).
CONV_OPS = ("convolution", "conv1d", "conv2d")
NORM_OPS = ("batch_norm", "max_pool", "relu", "threshold_backward", "clamp_min")


@dataclass
class Setup:
    """One layout's model, optimiser and inputs, built from the same seed."""

    layout: str  # "conv1d" or "conv2d"
    model: SimCLR  # encoder + projector
    optimizer: torch.optim.Optimizer  # Adam, as configs/pretrain-cpu.toml
    times: list[float]  # seconds per timed step


def training_flops(channels: tuple[int, ...]) -> float:
    """FLOPs of one training window: 3x the forward convolutions (forward, 2 backward GEMMs)."""
    widths, length, total = (1, *channels), WINDOW_SAMPLES, 0.0
    for i, c_out in enumerate(channels):
        length = length // 3 if i == 0 else length  # block 0: stride-3 conv
        total += 2 * widths[i] * c_out * 3 * length
        length = length // 3 if 1 <= i <= 9 else length  # blocks 1-9 pool by 3
    return 3 * total


def gemm_tflops(device: torch.device, n: int = GEMM_N, reps: int = 3) -> float:
    """Measured bf16 matmul rate in TFLOP/s (median of `reps`)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b  # warm-up: oneDNN kernel selection
    seconds = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(seconds) / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(layout: str, channels: tuple[int, ...], device: torch.device) -> Setup:
    torch.manual_seed(0)
    encoder = SampleCNN(EncoderConfig(channels=channels), layout=layout)
    model = SimCLR(encoder, Projector(ProjectorConfig(in_dim=channels[-1]))).to(device)
    return Setup(layout, model, torch.optim.Adam(model.parameters(), lr=3e-4), [])


def train_step(setup: Setup, views: tuple[torch.Tensor, torch.Tensor], precision: str) -> None:
    device = views[0].device
    with autocast(device, precision):
        _, _, z_i, z_j = setup.model(*views)
    loss = nt_xent_loss(z_i.float(), z_j.float(), 0.5)
    setup.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    setup.optimizer.step()


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def profile_split(setup: Setup, augment: Callable[[], tuple], precision: str) -> dict[str, float]:
    """Fractions of one profiled step (augmentation included) per bucket."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        with record_function("augment"), torch.no_grad():
            views = augment()
        train_step(setup, views, precision)
        wall_us = 1e6 * (time.perf_counter() - start)
    split = dict.fromkeys(("conv", "bn+relu+pool", "augment", "optimiser"), 0.0)
    for event in prof.key_averages():
        name = event.key.lower()
        if name == "augment":
            split["augment"] = event.cpu_time_total
        elif name.startswith("optimizer.step"):
            split["optimiser"] = event.cpu_time_total
        elif name.startswith("aten::") and any(op in name for op in CONV_OPS):
            split["conv"] += event.self_cpu_time_total
        elif name.startswith("aten::") and any(op in name for op in NORM_OPS):
            split["bn+relu+pool"] += event.self_cpu_time_total
    split = {k: v / wall_us for k, v in split.items()}
    return split | {"other": max(0.0, 1 - sum(split.values()))}


def run(args: argparse.Namespace, batch: int, channels: tuple[int, ...]) -> None:
    device = torch.device(args.device)
    setups = [build(layout, channels, device) for layout in args.layouts]
    augment_chain = AugmentChain(AugmentConfig(), SAMPLE_RATE).to(device)
    crops = [(0.1 * torch.randn(batch, 1, WINDOW_SAMPLES)).to(device) for _ in range(2)]
    generator = torch.Generator(device).manual_seed(0)

    def augment() -> tuple[torch.Tensor, torch.Tensor]:
        return augment_chain(crops[0], generator), augment_chain(crops[1], generator)

    with torch.no_grad():
        views = augment()
    for setup in setups:  # warm-up: allocations, oneDNN kernel selection
        train_step(setup, views, args.precision)
    augment_s, gemm = [], []
    for _ in range(args.reps):
        gemm.append(gemm_tflops(device))
        with torch.no_grad():
            augment_s.append(timed(augment, device))
        for setup in setups:
            call = functools.partial(train_step, setup, views, args.precision)
            setup.times.append(timed(call, device))
    rate, aug = statistics.median(gemm), statistics.median(augment_s)
    flops = training_flops(channels)
    print(f"\nbatch {batch} pairs ({2 * batch} windows/step), {args.precision}, {args.reps} reps")
    print(f"bf16 GEMM {GEMM_N}^3: {rate:.2f} TFLOP/s (min {min(gemm):.2f}, max {max(gemm):.2f})")
    print(f"augmentation, both views: {1e3 * aug:.0f} ms/step ({2 * batch / aug:.1f} windows/s)")
    base = statistics.median(setups[0].times)
    ratio = "vs " + setups[0].layout
    print(f"{'layout':7} {'step ms':>8} {'win/s':>7} {ratio:>10} {'of GEMM':>8}  (win/s + augment)")
    for setup in setups:
        step = statistics.median(setup.times)
        per_s = 2 * batch / step
        fraction = per_s * flops / (rate * 1e12)
        print(
            f"{setup.layout:7} {1e3 * step:8.0f} {per_s:7.1f} {base / step:9.2f}x {fraction:8.1%}"
            f"  ({2 * batch / (step + aug):.1f})"
        )
    if args.profile:
        print("profile split of one step:")
        for setup in setups:
            split = profile_split(setup, augment, args.precision)
            cells = "  ".join(f"{k} {v:5.1%}" for k, v in split.items())
            print(f"  {setup.layout:7} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32], help="pairs per step")
    parser.add_argument("--layouts", nargs="+", default=["conv1d", "conv2d"])
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--reps", type=int, default=3, help="timed steps per layout")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: default)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--tiny", action="store_true", help="reduced-width encoder (tests' size)")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    channels = TINY_CHANNELS if args.tiny else CLMR_CHANNELS
    amx = sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16")))
    auto = choose_layout("auto", torch.device(args.device), args.precision)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags {amx or 'none'}"
        f" -> auto layout {auto}; encoder {'tiny' if args.tiny else 'full (CLMR)'},"
        f" {training_flops(channels) / 1e9:.1f} GFLOP per training window"
    )
    for batch in args.batches:
        run(args, batch, channels)


if __name__ == "__main__":
    main()

"""Benchmark of one pre-training step, variants side by side, against the machine's GEMM rate.

Three objectives: `simclr` (two augmented views, projector, NT-Xent, Adam: configs/pretrain-cpu),
`distill` (clean-view distillation alone: one crop per example, polarity + gain, a linear head to
753 teacher units, MSE, AdamW: configs/distill-clean) and `cpc` (CLMR v1's CPC: one clean crop,
Conv1d encoder + GRU, InfoNCE over 12 steps with 128 batch negatives, Adam). Each variant
(objective x encoder layout x eager/torch.compile) runs interleaved in one process, repetition
by repetition, and medians are reported, so a busy machine slows each alike; the GEMM rate, in
the run's precision, is measured between the repetitions too. Augmentation is timed apart. Random
audio stands in for the cache. A profiled step per variant splits its time into convolutions /
BN+ReLU+pool / augmentation / optimiser.

    .venv/bin/python bench/train.py                        # CPU, 32 pairs (configs/pretrain-cpu)
    .venv/bin/python bench/train.py --objective distill --batches 64 --compile both
    .venv/bin/python bench/train.py --batches 32 48 64 --reps 5
    .venv/bin/python bench/train.py --precision fp32 --tiny
    .venv/bin/python bench/train.py --objective all --precision fp32 --layouts conv1d

--batches counts items per step: pairs for simclr (two windows each), crops for distill and cpc.
CPC has one layout (Conv1d); its GFLOP per training window are counted from its own layers.
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
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from clmr_embed.constants import CPC_FILTERS, CPC_PADDING, CPC_STRIDES, SAMPLE_RATE, WINDOW_SAMPLES
from training.config import CLMR_CHANNELS, CPCConfig, EncoderConfig, ProjectorConfig
from training.cpc import CPC, CPCEncoder
from training.layout import choose_layout, cpu_flags
from training.pretrain.augment import AugmentChain
from training.pretrain.config import AugmentConfig, load_pretrain_config
from training.pretrain.lars import decay_groups
from training.pretrain.loop import autocast
from training.pretrain.objectives import SimCLR, global_info_nce, nt_xent_loss
from training.samplecnn import Projector, SampleCNN

TINY_CHANNELS = (8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)
GEMM_N = 2048  # square matmul for the machine's GEMM rate
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Profiler op names per bucket (forward and backward kernels).
CONV_OPS = ("convolution", "conv1d", "conv2d")
NORM_OPS = ("batch_norm", "max_pool", "relu", "threshold_backward", "clamp_min")


DISTILL_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "distill-clean.toml"
TEACHER_DIM = 753  # musicnn max_pool, the distillation target
OBJECTIVES = ["simclr", "distill", "cpc"]


@dataclass(frozen=True)
class Variant:
    """One way to run the step."""

    objective: str  # "simclr", "distill" or "cpc"
    layout: str  # "conv1d" or "conv2d"
    compiled: bool  # torch.compile (inductor) around the model

    @property
    def name(self) -> str:
        return f"{self.objective} {self.layout}{' compiled' if self.compiled else ''}"


@dataclass
class Setup:
    """One variant's model, optimiser, augmentation and inputs, built from the same seed."""

    variant: Variant
    augment: Callable[[], tuple[torch.Tensor, ...]]  # the objective's views of fixed crops
    step: Callable[[tuple[torch.Tensor, ...]], None]  # one optimiser step on those views
    windows: int  # encoder windows per step
    times: list[float]  # seconds per timed step


def training_flops(channels: tuple[int, ...]) -> float:
    """FLOPs of one training window: 3x the forward convolutions (forward, 2 backward GEMMs)."""
    widths, length, total = (1, *channels), WINDOW_SAMPLES, 0.0
    for i, c_out in enumerate(channels):
        length = length // 3 if i == 0 else length  # block 0: stride-3 conv
        total += 2 * widths[i] * c_out * 3 * length
        length = length // 3 if 1 <= i <= 9 else length  # blocks 1-9 pool by 3
    return 3 * total


def cpc_flops(config: CPCConfig) -> float:
    """FLOPs of one CPC training window: 3x the forward convolutions, GRU and predictors."""
    width, length, total = 1, config.window_samples, 0.0
    for stride, size, pad in zip(CPC_STRIDES, CPC_FILTERS, CPC_PADDING, strict=True):
        length = (length + 2 * pad - size) // stride + 1
        total += 2 * width * config.hidden_dim * size * length
        width = config.hidden_dim
    gru = 2 * 3 * (config.hidden_dim + config.context_dim) * config.context_dim * length
    predictors = 2 * config.prediction_steps * config.context_dim * config.hidden_dim * length
    return 3 * (total + gru + predictors)


def objective_flops(objective: str, channels: tuple[int, ...], tiny: bool) -> float:
    """FLOPs of one training window of the objective's encoder."""
    return cpc_flops(bench_cpc_config(tiny)) if objective == "cpc" else training_flops(channels)


def bench_cpc_config(tiny: bool) -> CPCConfig:
    """CLMR v1's CPC shape, or a narrow one beside the tiny SampleCNN."""
    return CPCConfig(hidden_dim=32, context_dim=16) if tiny else CPCConfig()


def gemm_tflops(device: torch.device, dtype: torch.dtype, n: int = GEMM_N, reps: int = 3) -> float:
    """Measured matmul rate in TFLOP/s (median of `reps`) in the precision the steps run in.

    The ceiling follows --precision: on a CPU without native bf16 a bf16 2048^3 GEMM is emulated
    (115 s here against 0.5 s in fp32), which would be neither a ceiling nor a quick check.
    """
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
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


def build(
    variant: Variant, channels: tuple[int, ...], batch: int, args: argparse.Namespace
) -> Setup:
    """The variant's model and step; inputs are random audio of `batch` items."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    encoder = SampleCNN(EncoderConfig(channels=channels), layout=variant.layout)
    crops = [(0.1 * torch.randn(batch, 1, WINDOW_SAMPLES)).to(device) for _ in range(2)]
    generator = torch.Generator(device).manual_seed(0)
    if variant.objective == "cpc":
        model: nn.Module = CPC(CPCEncoder(bench_cpc_config(args.tiny)))
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        chain: Callable[[torch.Tensor, torch.Generator], torch.Tensor] = _clean  # no views
        loss_of = functools.partial(_info_nce, generator=torch.Generator(device).manual_seed(1))
        crops = crops[:1]
    elif variant.objective == "simclr":
        model = SimCLR(encoder, Projector(ProjectorConfig(in_dim=channels[-1])))
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        chain = AugmentChain(AugmentConfig(), SAMPLE_RATE).to(device)
        loss_of = _nt_xent
    else:
        model = nn.Sequential(encoder, nn.Linear(channels[-1], TEACHER_DIM))
        optimizer = torch.optim.AdamW(decay_groups(model, 0.01), lr=3e-4)
        chain = AugmentChain(load_pretrain_config(DISTILL_RECIPE).augment, SAMPLE_RATE).to(device)
        target = torch.randn(batch, TEACHER_DIM, device=device)
        loss_of = functools.partial(_mse, target=target)
        crops = crops[:1]
    model.to(device)
    called = torch.compile(model) if variant.compiled else model

    def augment() -> tuple[torch.Tensor, ...]:
        return tuple(chain(crop, generator) for crop in crops)

    def step(views: tuple[torch.Tensor, ...]) -> None:
        with autocast(device, args.precision):
            out = called(*views)
        loss = loss_of(out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return Setup(variant, augment, step, batch * len(crops), [])


def _nt_xent(out: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return nt_xent_loss(out[2].float(), out[3].float(), 0.5)


def _clean(crop: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return crop  # CPC trains on the clean crop


def _info_nce(out: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    z, predictions = out
    return global_info_nce(z.float(), predictions.float(), 128, generator)


def _mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(predicted.float(), target)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def profile_split(setup: Setup) -> dict[str, float]:
    """Fractions of one profiled step (augmentation included) per bucket."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        with record_function("augment"), torch.no_grad():
            views = setup.augment()
        setup.step(views)
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


def variants(args: argparse.Namespace) -> list[Variant]:
    """Every asked combination of objective, layout and compile."""
    groups = {"all": OBJECTIVES, "both": OBJECTIVES[:2]}  # "both": the SampleCNN objectives
    objectives = groups.get(args.objective, [args.objective])
    compiled = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    layouts = {o: ["conv1d"] if o == "cpc" else args.layouts for o in objectives}
    return [Variant(o, lay, c) for o in objectives for lay in layouts[o] for c in compiled]


def run(args: argparse.Namespace, batch: int, channels: tuple[int, ...]) -> None:
    device = torch.device(args.device)
    setups = [build(v, channels, batch, args) for v in variants(args)]
    views = {id(s): s.augment() for s in setups}
    for setup in setups:  # warm-up: allocations, oneDNN kernel selection, compilation
        for _ in range(2 if setup.variant.compiled else 1):
            setup.step(views[id(setup)])
    augment_s: dict[str, list[float]] = {}
    gemm = []
    for _ in range(args.reps):
        gemm.append(gemm_tflops(device, DTYPES[args.precision]))
        for setup in setups:
            with torch.no_grad():
                augment_s.setdefault(setup.variant.objective, []).append(
                    timed(setup.augment, device)
                )
            setup.times.append(timed(functools.partial(setup.step, views[id(setup)]), device))
    rate = statistics.median(gemm)
    print(f"\nbatch {batch} items (simclr: pairs; distill, cpc: crops), {args.precision}, "
          f"{args.reps} reps")  # fmt: skip
    print(
        f"{args.precision} GEMM {GEMM_N}^3: {rate:.2f} TFLOP/s "
        f"(min {min(gemm):.2f}, max {max(gemm):.2f})"
    )
    for objective, seconds in augment_s.items():
        print(f"augmentation, {objective}: {1e3 * statistics.median(seconds):.0f} ms/step")
    base = setups[0].windows / statistics.median(setups[0].times)
    ratio = "vs first"
    print(
        f"{'variant':24} {'step ms':>8} {'win/s':>7} {ratio:>9} {'of GEMM':>8}  (win/s + augment)"
    )
    for setup in setups:
        step = statistics.median(setup.times)
        aug = statistics.median(augment_s[setup.variant.objective])
        per_s = setup.windows / step
        flops = objective_flops(setup.variant.objective, channels, args.tiny)
        fraction = per_s * flops / (rate * 1e12)
        print(
            f"{setup.variant.name:24} {1e3 * step:8.0f} {per_s:7.1f} {per_s / base:8.2f}x"
            f" {fraction:8.1%}  ({setup.windows / (step + aug):.1f})"
        )
    if args.profile:
        print("profile split of one step:")
        for setup in setups:
            cells = "  ".join(f"{k} {v:5.1%}" for k, v in profile_split(setup).items())
            print(f"  {setup.variant.name:24} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32], help="items per step")
    parser.add_argument("--objective", choices=[*OBJECTIVES, "both", "all"], default="simclr")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="off")
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
        f" (CPC {cpc_flops(bench_cpc_config(args.tiny)) / 1e9:.1f})"
    )
    for batch in args.batches:
        run(args, batch, channels)


if __name__ == "__main__":
    main()

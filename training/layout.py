"""SampleCNN's compute layouts: Conv1d modules, or unit-height 2-D ops in channels-last memory."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from clmr_embed.errors import ConfigError
from training.batchnorm import GlobalBatchNorm1d, global_batch_norm

LAYOUTS = ("auto", "conv1d", "conv2d")  # encoder_layout values; "auto" resolves at start-up
# oneDNN runs bf16 convolutions on AMX tiles only in channels-last 2-D form; without AMX
# (e.g. AMD Zen 4's avx512_bf16) the layout was not measured faster, so it stays Conv1d.
FAST_CPU_FLAGS = ("amx_bf16", "amx_tile")
# Without one of these, oneDNN emulates bf16 with conversions: on an AVX2-only AMD EPYC the
# SampleCNN forward ran 0.4 windows/s in bf16 against 5.0 in fp32 (batch 8, one thread).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags from /proc/cpuinfo; empty where that is unreadable."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def choose_layout(
    requested: str, device: torch.device, precision: str, flags: frozenset[str] | None = None
) -> str:
    """Resolve encoder_layout: "auto" is "conv2d" for bf16 on an AMX CPU, else "conv1d".

    `flags` are the CPU's feature flags (default: this machine's, from /proc/cpuinfo).

    Raises:
        ConfigError: an unknown layout, or "conv2d" off the CPU.
    """
    if requested not in LAYOUTS:
        raise ConfigError(f"encoder_layout = {requested!r}; use one of {list(LAYOUTS)}")
    if requested == "conv2d" and device.type != "cpu":
        raise ConfigError(f"encoder_layout 'conv2d' is a CPU layout, not for {device.type}")
    if requested != "auto":
        return requested
    amx = all(flag in (cpu_flags() if flags is None else flags) for flag in FAST_CPU_FLAGS)
    return "conv2d" if device.type == "cpu" and precision == "bf16" and amx else "conv1d"


def cpu_precision(
    requested: str, device: torch.device, flags: frozenset[str] | None = None
) -> tuple[str, str | None]:
    """The precision to run and why it differs: bf16 falls back to fp32 on a CPU without
    native bf16 (`flags` as in choose_layout). Returns (precision, warning or None)."""
    have = cpu_flags() if flags is None else flags
    if requested != "bf16" or device.type != "cpu" or not have or have & set(NATIVE_BF16_FLAGS):
        return requested, None  # unreadable flags: trust the config
    return "fp32", (
        "precision 'bf16' requested, but this CPU has no native bf16 (no avx512_bf16 or "
        "amx_bf16; emulated bf16 ran ~12x slower than fp32): training in fp32"
    )


def forward_channels_last(blocks: nn.Sequential, audio: Tensor) -> Tensor:
    """SampleCNN's blocks on (batch, 1, samples) as 2-D ops on (batch, C, 1, T) channels-last.

    Same parameters, buffers and function as `blocks(audio)` followed by the flatten; only the
    memory layout differs. Returns (batch, C x T_out).
    """
    batch, _, samples = audio.shape
    k = int(_parts(blocks[0])[0].kernel_size[0])
    # The first conv has stride == kernel: frames of k samples become k input channels of a 1x1
    # conv, which is already channels-last memory (a Conv2d on one channel would not be).
    frames = audio[..., : samples - samples % k].reshape(batch, 1, -1, k)
    x = frames.permute(0, 3, 1, 2)  # (batch, k, 1, samples // k)
    for index, block in enumerate(blocks):
        x = _block(block, x, first=index == 0)
    return x.reshape(batch, -1)


def _parts(block: nn.Module) -> tuple[nn.Conv1d, _BatchNorm, nn.MaxPool1d | None]:
    """A SampleCNN block's conv, norm and (blocks 1-9) pool; ReLU is implied."""
    conv, norm, *rest = block.children()
    pool = rest[1] if len(rest) > 1 else None
    if not (isinstance(conv, nn.Conv1d) and isinstance(norm, _BatchNorm)):
        raise TypeError(f"not a SampleCNN block: {block}")
    if pool is not None and not isinstance(pool, nn.MaxPool1d):
        raise TypeError(f"not a SampleCNN block: {block}")
    return conv, norm, pool


def _block(block: nn.Module, x: Tensor, first: bool) -> Tensor:
    conv, norm, pool = _parts(block)
    if first:
        weight = conv.weight.reshape(conv.out_channels, -1, 1, 1)
        y = F.conv2d(x, _weight(weight), conv.bias)
    else:
        stride, padding = int(conv.stride[0]), int(conv.padding[0])
        weight = conv.weight.unsqueeze(2)  # (out, in, k) -> (out, in, 1, k), a view
        y = F.conv2d(x, _weight(weight), conv.bias, stride=(1, stride), padding=(0, padding))
    y = _batch_norm(norm, y)
    if pool is not None:
        # max(relu(x)) == relu(max(x)): pool first, so ReLU touches a third of the data.
        size, stride = int(pool.kernel_size), int(pool.stride)  # type: ignore[arg-type]
        y = F.max_pool2d(y, (1, size), stride=(1, stride))
    # In place: neither batch_norm's nor max_pool2d's backward reads its own output.
    return torch.relu_(y)


def _weight(weight: Tensor) -> Tensor:
    """A (out, in, 1, k) weight view as channels-last, cast once to the autocast dtype."""
    device = weight.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
    return weight.to(dtype, memory_format=torch.channels_last)


def _batch_norm(norm: _BatchNorm, y: Tensor) -> Tensor:
    """`norm` (a BatchNorm1d) applied to a 4-D tensor: _BatchNorm.forward's rules, same buffers.

    float32 is normalised in contiguous memory: the channels-last CPU kernel sums float32 values
    one by one (~1e-5 relative error at 10^5 values per channel, which 11 layers amplify to
    ~1e-3). Under bf16 autocast that error is far below bf16's rounding, so bf16 stays
    channels-last.
    """
    if isinstance(norm, GlobalBatchNorm1d) and norm.synced():
        return global_batch_norm(norm, y)  # elementwise from y: stays channels-last
    factor = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # cumulative moving average
            factor = 1.0 / float(norm.num_batches_tracked)
    batch_stats = norm.training or (norm.running_mean is None and norm.running_var is None)
    keep = not norm.training or norm.track_running_stats
    channels_last = y.dtype != torch.float32
    out = F.batch_norm(
        y if channels_last else y.contiguous(),
        norm.running_mean if keep else None,
        norm.running_var if keep else None,
        norm.weight,
        norm.bias,
        batch_stats,
        factor,
        norm.eps,
    )
    return out if channels_last else out.contiguous(memory_format=torch.channels_last)

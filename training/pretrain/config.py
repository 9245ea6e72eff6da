"""Every setting of a pre-training run: the config dataclasses, TOML in and out, resume checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clmr_embed.atomic import write_text
from clmr_embed.constants import SAMPLE_RATE
from clmr_embed.errors import ConfigError
from training.config import CLMR_CHANNELS, config_from_dict, config_to_dict, load_toml
from training.layout import LAYOUTS
from training.pretrain.distill import HEADS
from training.pretrain.teacher import OUTPUTS


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of CLMR v2's chain (torchaudio-augmentations 0.2.4 defaults)."""

    polarity_p: float = 0.8  # PolarityInversion: x -> -x
    noise_p: float = 0.01  # Noise: additive Gaussian
    noise_min_ratio: float = 1e-4  # noise std >= this x the example's std
    noise_max_ratio: float = 1e-2  # noise std <= this x the example's std
    gain_p: float = 0.3  # Gain: attenuation, then clamp to [-1, 1]
    gain_min_db: float = -20.0  # gain ~ U(min, max) dB
    gain_max_db: float = -1.0
    filter_p: float = 0.8  # HighLowPass: 50/50 high-pass or low-pass (julius windowed sinc)
    highpass_min_hz: float = 200.0  # high-pass cutoff ~ U(min, max) Hz
    highpass_max_hz: float = 1200.0
    lowpass_min_hz: float = 2200.0  # low-pass cutoff ~ U(min, max) Hz
    lowpass_max_hz: float = 4000.0
    delay_p: float = 0.3  # Delay: (x + volume * x delayed) / 2
    delay_ms: tuple[int, ...] = (200, 250, 300, 350, 400, 450)  # np.arange(200, 500, 50)
    delay_volume: float = 0.5  # t-a 0.2.4 (CLMR v1 used 0.2)
    pitch_p: float = 0.6  # PitchShift, length kept
    pitch_min_cents: int = -700  # integer cents ~ U{min..max}
    pitch_max_cents: int = 700
    reverb_p: float = 0.6  # Reverb, length kept
    reverb_max: int = 100  # reverberance, damping, room size each ~ U{0..reverb_max}
    reverb_wet: float = 0.5  # ours: out = (1 - wet) x + wet (x * ir); sox mixes dry + wet
    cpu_chunk: int = 8  # examples per transform call on CPU (cache-friendly, ~2x faster); 0: all
    views: int = 2  # views the chain augments: 2 (CLMR v2, both), 1 (v1's asymmetric variant:
    #   the first view augmented, the second a clean crop)

    def __post_init__(self) -> None:
        probs = {k: v for k, v in vars(self).items() if k.endswith("_p")}
        bad = {k: v for k, v in probs.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ConfigError(f"augmentation probabilities must lie in [0, 1], got {bad}")
        if self.views not in (1, 2):
            raise ConfigError(f"augment.views must be 1 or 2, got {self.views}")


METHODS = ("simclr", "cpc")  # SimCLR (two views, NT-Xent) or CLMR v1's CPC (InfoNCE)
CHOICES = {
    "method": METHODS,
    "optimizer": ("adam", "adamw", "lars"),
    "precision": ("fp32", "bf16", "fp16"),
    "device": ("auto", "cpu", "cuda"),
    "schedule": ("cosine", "constant"),
    "encoder_layout": LAYOUTS,
    "teacher_head": HEADS,
    "teacher_output": tuple(OUTPUTS),
}
POSITIVE = (
    "batch_size",
    "checkpoint_every",
    "cpc_hidden_dim",
    "cpc_context_dim",
    "cpc_prediction_steps",
    "cpc_negatives",
    "log_every",
    "projection_dim",
    "validation_crops",
    "validate_every",
)


@dataclass(frozen=True)
class PretrainConfig:
    """Every setting of a pre-training run; saved resolved as output_dir/config.toml."""

    # model
    method: str = "simclr"  # "simclr" (SampleCNN, NT-Xent) or "cpc" (CLMR v1's CPC, InfoNCE)
    encoder_channels: tuple[int, ...] = CLMR_CHANNELS  # SampleCNN block widths (11)
    projection_hidden_dim: int = 512  # projector Linear(512, hidden) -> ReLU -> Linear(hidden, dim)
    projection_dim: int = 128  # CLMR v1 / released checkpoint: 128 (v2 used 64)
    # CPC (method = "cpc"): Conv1d encoder -> GRU; the embedding is the time-mean of the GRU's c
    cpc_hidden_dim: int = 512  # Conv1d channels (width of z), CLMR v1: 512
    cpc_context_dim: int = 256  # GRU units (width of c and the embedding), CLMR v1: 256
    cpc_prediction_steps: int = 12  # InfoNCE predicts z at t+1..t+k, CLMR v1: 12
    cpc_negatives: int = 128  # negatives per prediction step, drawn from the whole batch's z
    # data
    batch_size: int = 48  # pairs per process (per GPU); the global batch is batch_size x world
    segment_seconds: float = 30.0  # item length: tracks are cut into 30 s segments (MTAT clips)
    same_track_negatives: bool = True  # v2: True; False masks segments of one track (v1)
    workers: int = 0  # DataLoader worker processes (0: load in the training process)
    cache_dir: str = ""  # audio cache root; "" = $XDG_CACHE_HOME/clmr-embed/audio-cache
    allow_probe_sets: bool = False  # permit gtzan_subset/medley_solos_subset (test-data leak)
    # length and optimisation
    max_steps: int = 0  # optimiser steps; 0 = epochs x steps per epoch
    epochs: int = 100  # passes over the segments, used when max_steps is 0
    stop_at_step: int = 0  # end this run early at this step (0: at the end); the schedule
    #   still spans the whole run, so a time-limited job can stop and resume later
    optimizer: str = "adam"  # "adam" (CLMR v2), "adamw" (decoupled decay) or "lars" (v1; set
    #   lr ~ 0.075 x sqrt(batch))
    lr: float = 3e-4  # peak learning rate; CLMR v2's Adam: 3e-4
    weight_decay: float = 1e-6  # CLMR's config value; never applied to BN weights or biases
    schedule: str = "cosine"  # "cosine" (to lr x min_lr_ratio) or "constant" (v2), after warm-up
    warmup_steps: int = 0  # linear warm-up steps
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    temperature: float = 0.5  # NT-Xent tau, CLMR v1 and v2
    # execution
    precision: str = "fp32"  # "fp32", "bf16" (autocast, CPU or CUDA), "fp16" (CUDA + GradScaler)
    compile: bool = False  # torch.compile the model (slow start, faster steps)
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default
    encoder_layout: str = "auto"  # "conv1d", "conv2d" (channels-last CPU) or "auto": see layout
    seed: int = 42  # CLMR's seed; fixes init, data order, crops and augmentations
    init_weights: str = ""  # checkpoint whose encoder (+ projector) weights start the run, e.g.
    #   checkpoints/clmr-free.pt to continue the default model; optimiser and schedule start anew
    head_warmup_steps: int = 0  # for the first N steps only the heads learn (the encoder stays
    #   as loaded): a fresh head's random gradients would first undo what init_weights learned
    # knowledge distillation (off unless `teacher` is set): a head on the embedding of each view
    # regresses the teacher's output for that view's clean crop, beside NT-Xent
    teacher: str = ""  # folder with musicnn_mtt.onnx + musicnn_frontend.py (../shared/weights)
    teacher_output: str = "max_pool"  # max_pool (753-d), mean_pool, penultimate (200), taggram (50)
    teacher_weight: float = 1.0  # loss = NT-Xent + teacher_weight x MSE(standardised targets)
    contrastive_weight: float = 1.0  # NT-Xent's weight; 0 with a teacher: distillation alone
    teacher_head: str = "linear"  # "linear" or "mlp" (one hidden layer of 512)
    teacher_hop_seconds: float = 1.0  # grid of crop starts with a cached target; crops snap to it
    teacher_workers: int = 2  # teacher processes when targets must be computed first
    teacher_min_coverage: float = 1.0  # share of tracks with targets needed to start; below it
    #   the missing ones are computed first (lower: start on a partial target cache, masked)
    # distillation alone (contrastive_weight = 0): each example is one crop on the target grid
    anchor_weight: float = 0.0  # loss += this x squared distance of each crop's embedding to
    #   the frozen init_weights encoder's, relative to its batch spread (training/pretrain/
    #   anchor.py): keeps what the starting model learned; distillation alone, needs init_weights
    crop_jitter_seconds: float = 0.0  # each crop starts up to this far either side of its grid
    #   point (its target stays the grid point's); only for distillation alone
    validation_fraction: float = 0.0  # share of tracks held out for a validation MSE (seeded)
    validation_crops: int = 512  # held-out crops scored at most, spread evenly over them
    validate_every: int = 200  # steps between validation lines in metrics.jsonl (and at the end)
    # bookkeeping
    checkpoint_every: int = 1000  # steps between latest.pt/best.pt saves (and at the end)
    log_every: int = 10  # steps between metrics.jsonl lines
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # CLMR v2 chain, [augment]

    def __post_init__(self) -> None:
        for name, valid in CHOICES.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"{name} = {getattr(self, name)!r}; use one of {list(valid)}")
        for name in POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.head_warmup_steps < 0:
            raise ConfigError(f"head_warmup_steps must be >= 0, got {self.head_warmup_steps}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ConfigError("set max_steps or epochs to a value > 0")
        if self.teacher:
            self._check_teacher()
        if self.contrastive_weight < 0 or (self.contrastive_weight == 0 and not self.teacher):
            raise ConfigError(
                f"contrastive_weight = {self.contrastive_weight}: use a weight > 0, or 0 only "
                "with a teacher (distillation alone)"
            )
        self._check_single_crops()
        if self.method == "cpc" and self.teacher:
            raise ConfigError("method = 'cpc' trains without a teacher; unset teacher")

    @property
    def objective(self) -> str:
        """ "distill" (one crop per example, no NT-Xent), "cpc" (one crop, InfoNCE) or "simclr"
        (two views, NT-Xent)."""
        if self.method == "cpc":
            return "cpc"
        return "distill" if self.contrastive_weight == 0 else "simclr"

    @property
    def windows_per_example(self) -> int:
        """Encoder windows one batch item costs: one crop, or SimCLR's two views."""
        return 2 if self.objective == "simclr" else 1

    def _check_single_crops(self) -> None:
        if self.anchor_weight < 0 or (self.anchor_weight > 0 and not self.init_weights):
            raise ConfigError(
                f"anchor_weight = {self.anchor_weight}: use a weight >= 0, and > 0 only with "
                "init_weights (the encoder the run stays near)"
            )
        extras = {
            k: getattr(self, k)
            for k in ("crop_jitter_seconds", "validation_fraction", "anchor_weight")
            if getattr(self, k) != 0
        }
        if extras and self.objective != "distill":
            raise ConfigError(
                f"{', '.join(f'{k} = {v}' for k, v in extras.items())} apply to distillation "
                "alone; set contrastive_weight = 0 (with a teacher) or leave them at 0"
            )
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(
                f"validation_fraction = {self.validation_fraction}; use a share in [0, 1)"
            )
        if not 0 <= self.crop_jitter_seconds <= self.teacher_hop_seconds / 2:
            raise ConfigError(
                f"crop_jitter_seconds = {self.crop_jitter_seconds}; use 0 to half of "
                f"teacher_hop_seconds ({self.teacher_hop_seconds / 2:g}), so crops stay nearest "
                "their own grid point"
            )

    def _check_teacher(self) -> None:
        if not self.teacher_weight > 0 or not 0 < self.teacher_min_coverage <= 1:
            raise ConfigError("teacher_weight must be > 0 and teacher_min_coverage in (0, 1]")
        hop = round(self.teacher_hop_seconds * SAMPLE_RATE)
        if hop < 1 or round(self.segment_seconds * SAMPLE_RATE) % hop:
            raise ConfigError(
                f"teacher_hop_seconds = {self.teacher_hop_seconds} must divide segment_seconds "
                f"= {self.segment_seconds} (segments start on the target grid)"
            )


# Settings that may change on resume; any other difference means a different run.
RESUMABLE = {
    "max_steps",
    "epochs",
    "stop_at_step",
    "checkpoint_every",
    "log_every",
    "device",
    "threads",
    "compile",
    "workers",
    "cache_dir",
    "precision",
    "init_weights",  # a resumed run takes its weights from latest.pt
    "encoder_layout",  # how the encoder computes, not what it stores
    "teacher",  # where the teacher files are; the targets' grid and output must stay
    "teacher_workers",
    "teacher_min_coverage",
    "validate_every",
    "validation_crops",
}


def load_pretrain_config(
    path: Path | None, overrides: dict[str, Any] | None = None
) -> PretrainConfig:
    """Defaults, then a TOML file, then `overrides` (dotted "augment.x" keys reach [augment]).

    Raises:
        ConfigError: unknown keys (named, with the valid ones), bad values, unreadable TOML.
    """
    data = load_toml(Path(path)) if path else {}
    augment = dict(data.pop("augment", {}))
    for key, value in (overrides or {}).items():
        if key.startswith("augment."):
            augment[key.removeprefix("augment.")] = value
        elif key == "augment":
            augment.update(value)
        else:
            data[key] = value
    return config_from_dict(
        PretrainConfig, {**data, "augment": config_from_dict(AugmentConfig, augment)}
    )


def resume_conflicts(saved: dict[str, Any], config: PretrainConfig, world: int) -> list[str]:
    """Settings of `config` (and the process count) that differ from a saved run's config.

    The process count and the per-process batch_size may change together when their product,
    the global batch, stays: the steps then see the same segments (the data order is a pure
    function of the step and the global batch), so a run moves between world sizes.
    """
    now, defaults = config_to_dict(config), config_to_dict(PretrainConfig())
    # a setting newer than the saved run took its default there
    then = {**defaults, **saved, "augment": {**defaults["augment"], **saved.get("augment", {})}}
    fixed = RESUMABLE | {"batch_size"}
    changed = sorted(k for k in now if k not in fixed and then[k] != now[k])
    if config.anchor_weight > 0 and saved.get("init_weights") != now["init_weights"]:
        changed.append("init_weights (the anchor of anchor_weight)")
    saved_world = int(saved.get("world_size", world))
    if saved.get("batch_size") is not None and saved["batch_size"] * saved_world != (
        config.batch_size * world
    ):
        changed.append("batch_size x world_size (the global batch)")
    return sorted(changed)


def write_config(path: Path, config: PretrainConfig) -> None:
    """The resolved config as TOML (readable back by load_pretrain_config), written atomically."""
    top = config_to_dict(config)
    lines = ["# resolved clmr-embed pretrain config"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in top.items() if k != "augment"]
    lines += ["", "[augment]", *(f"{k} = {_toml_value(v)}" for k, v in top["augment"].items())]
    write_text(path, "\n".join(lines) + "\n")


def _toml_value(value: Any) -> str:
    # JSON's strings, numbers, lists and lowercase booleans are valid TOML values
    # (inf/nan never occur in a validated config).
    return json.dumps(value)

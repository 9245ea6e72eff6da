"""SampleCNN encoder (Lee et al. 2017, as in CLMR) plus the SimCLR projector and tagger heads."""

from __future__ import annotations

import torch
from torch import nn

from training.config import EncoderConfig, HeadConfig, ProjectorConfig
from training.layout import forward_channels_last


def _block(c_in: int, c_out: int, first: bool, pool: bool) -> nn.Sequential:
    # Module indices 0 (conv) and 1 (bn) are part of the official key names; keep them.
    conv = (
        nn.Conv1d(c_in, c_out, kernel_size=3, stride=3, padding=0)
        if first
        else nn.Conv1d(c_in, c_out, kernel_size=3, stride=1, padding=1)
    )
    layers: list[nn.Module] = [conv, nn.BatchNorm1d(c_out), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool1d(3, stride=3))
    return nn.Sequential(*layers)


class SampleCNN(nn.Module):
    """Raw-waveform encoder: (batch, 1, 59049) float32 -> (batch, embedding_dim) float32.

    State dict keys are `sequential.{i}.{0,1}.*`, so official CLMR encoder weights load with
    strict=True. There is no `fc`: classifiers live in separate heads.

    `layout` is how forward computes, not what it stores: "conv1d" runs the modules, "conv2d"
    the same parameters and buffers as unit-height 2-D ops in channels-last memory
    (training.layout; ~2-3x faster bf16 training on AMX CPUs). It is not saved.
    """

    def __init__(self, config: EncoderConfig | None = None, layout: str = "conv1d") -> None:
        super().__init__()
        self.config = config or EncoderConfig()
        self.layout = layout
        widths = (1, *self.config.channels)
        blocks = [
            _block(widths[i], widths[i + 1], first=i == 0, pool=1 <= i <= 9)
            for i in range(len(self.config.channels))
        ]
        self.sequential = nn.Sequential(*blocks)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if self.layout == "conv2d":
            return forward_channels_last(self.sequential, audio)
        out = self.sequential(audio)
        # CLMR flattens (length is 1 at 59049 samples); this is not global pooling.
        flat: torch.Tensor = out.reshape(audio.shape[0], -1)
        return flat


class Projector(nn.Sequential):
    """SimCLR projection head, keys `0.weight`, `2.weight` as in CLMR's `projector.*`."""

    def __init__(self, config: ProjectorConfig | None = None) -> None:
        cfg = config or ProjectorConfig()
        super().__init__(
            nn.Linear(cfg.in_dim, cfg.hidden_dim, bias=False),
            nn.ReLU(),
            nn.Linear(cfg.hidden_dim, cfg.out_dim, bias=False),
        )
        self.config = cfg


class TaggerHead(nn.Sequential):
    """Linear (keys `0.*`, like CLMR's finetuner) or MLP (keys `0.*`, `2.*`) head on embeddings."""

    def __init__(self, config: HeadConfig | None = None) -> None:
        cfg = config or HeadConfig()
        if cfg.hidden_dim > 0:
            layers: list[nn.Module] = [
                nn.Linear(cfg.in_dim, cfg.hidden_dim),
                nn.ReLU(),
                nn.Linear(cfg.hidden_dim, cfg.n_labels),
            ]
        else:
            layers = [nn.Linear(cfg.in_dim, cfg.n_labels)]
        super().__init__(*layers)
        self.config = cfg


class Tagger(nn.Module):
    """Encoder + head: (batch, 1, 59049) -> (embedding (batch, D), logits (batch, n)).

    The encoder may be any module with SampleCNN's signature (e.g. export's Conv2d form).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(audio)
        return embedding, self.head(embedding)

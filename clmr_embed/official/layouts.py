"""The key layouts of official CLMR files (v1, 1550-epoch, Lightning, finetuner) and our shapes."""

from __future__ import annotations

from dataclasses import dataclass, field

from clmr_embed.constants import CLMR_CHANNELS

KeyTable = dict[str, str]  # key in the file -> key in our module's state dict

CONV_PARAMS = ("weight", "bias")
BN_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
HEAD_PARAMS = ("weight", "bias")
KERNEL = 3  # every SampleCNN convolution is 3 wide


def encoder_table(pattern: str) -> KeyTable:
    """File key -> SampleCNN key for all 77 encoder tensors.

    Args:
        pattern: a file key with fields {i} (block, 0-based), {n} (block, 1-based, for the
            1550-epoch `convN` names), {m} (0 conv, 1 batch norm) and {p} (parameter name).
    """
    table: KeyTable = {}
    for i in range(len(CLMR_CHANNELS)):
        for m, params in ((0, CONV_PARAMS), (1, BN_PARAMS)):
            for p in params:
                table[pattern.format(i=i, n=i + 1, m=m, p=p)] = f"sequential.{i}.{m}.{p}"
    return table


def projector_table(prefix: str) -> KeyTable:
    """File key -> Projector key (`0.weight`, `2.weight`; the projector has no biases)."""
    return {f"{prefix}{j}.weight": f"{j}.weight" for j in (0, 2)}


def head_table(prefix: str) -> KeyTable:
    """File key -> TaggerHead key (`0.*`, and `2.*` for an MLP head)."""
    return {f"{prefix}{j}.{p}": f"{j}.{p}" for j in (0, 2) for p in HEAD_PARAMS}


def fc_table(prefix: str) -> KeyTable:
    """File key -> TaggerHead key for a SampleCNN `fc` layer (v2's supervised/finetuned model)."""
    return {f"{prefix}fc.{p}": f"0.{p}" for p in HEAD_PARAMS}


@dataclass(frozen=True)
class Layout:
    """One official file layout: which key tables make it up."""

    source: str  # recorded as the weights' source
    marker: str  # a key prefix only this layout's files have ("" for head-only files)
    encoders: tuple[KeyTable, ...] = ()  # encoder copies; every copy present must be complete
    projector: KeyTable = field(default_factory=dict)  # optional SimCLR projector
    heads: tuple[KeyTable, ...] = ()  # optional heads, first present wins


V1_RAW = Layout(
    source="official CLMR v1 raw state dict",
    marker="encoder.sequential.",
    encoders=(encoder_table("encoder.sequential.{i}.{m}.{p}"),),
    projector=projector_table("projector."),
    heads=(fc_table("encoder."),),
)
V1_1550 = Layout(
    source="official CLMR v1 1550-epoch state dict (conv1..conv11)",
    marker="encoder.conv",
    encoders=(encoder_table("encoder.conv{n}.{m}.{p}"),),
    projector=projector_table("projector."),
    heads=(fc_table("encoder."),),
)
BARE = Layout(
    source="bare SampleCNN state dict",
    marker="sequential.",
    encoders=(encoder_table("sequential.{i}.{m}.{p}"),),
    heads=(fc_table(""),),
)
HEAD_ONLY = Layout(source="official CLMR finetuner head", marker="", heads=(head_table(""),))
# The encoder is saved twice (one module shared by ContrastiveLearning and SimCLR); the official
# loader reads `model.encoder.*`. LinearEvaluation adds its head as `model.0.*`.
LIGHTNING = Layout(
    source="CLMR v2 PyTorch Lightning checkpoint",
    marker="",
    encoders=(
        encoder_table("model.encoder.sequential.{i}.{m}.{p}"),
        encoder_table("encoder.sequential.{i}.{m}.{p}"),
    ),
    projector=projector_table("model.projector."),
    heads=(head_table("model."), fc_table("encoder."), fc_table("model.encoder.")),
)
RAW_LAYOUTS = (V1_1550, V1_RAW, BARE)  # checked in this order by their marker prefix


def encoder_shapes(channels: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """SampleCNN key -> shape, in state-dict order, for blocks of these output widths."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, width in enumerate(channels):
        c_in = 1 if i == 0 else channels[i - 1]
        shapes[f"sequential.{i}.0.weight"] = (width, c_in, KERNEL)
        shapes[f"sequential.{i}.0.bias"] = (width,)
        for p in BN_PARAMS:
            shapes[f"sequential.{i}.1.{p}"] = () if p == "num_batches_tracked" else (width,)
    return shapes


def projector_shapes(in_dim: int, hidden: int, out: int) -> dict[str, tuple[int, ...]]:
    """Projector key -> shape."""
    return {"0.weight": (hidden, in_dim), "2.weight": (out, hidden)}


def head_shapes(in_dim: int, hidden: int, n_labels: int) -> dict[str, tuple[int, ...]]:
    """Head key -> shape: linear (`0.*`) or, with `hidden` > 0, an MLP (`0.*`, `2.*`)."""
    if hidden == 0:
        return {"0.weight": (n_labels, in_dim), "0.bias": (n_labels,)}
    return {
        "0.weight": (hidden, in_dim),
        "0.bias": (hidden,),
        "2.weight": (n_labels, hidden),
        "2.bias": (n_labels,),
    }

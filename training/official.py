"""Import official CLMR checkpoints (v1, 1550-epoch, Lightning, finetuner heads) by key tables."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clmr_embed.constants import MTAT_TAGS
from clmr_embed.errors import CheckpointError
from training.checkpoint import Checkpoint, StateDict
from training.config import CLMR_CHANNELS, EncoderConfig, HeadConfig, ProjectorConfig
from training.samplecnn import Projector, SampleCNN, TaggerHead

KeyTable = dict[str, str]  # key in the file -> key in our module's state dict

CONV_PARAMS = ("weight", "bias")
BN_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
HEAD_PARAMS = ("weight", "bias")


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


def head_table(prefix: str, mlp_allowed: bool = True) -> KeyTable:
    """File key -> TaggerHead key (`0.*`, and `2.*` for an MLP head)."""
    layers = (0, 2) if mlp_allowed else (0,)
    return {f"{prefix}{j}.{p}": f"{j}.{p}" for j in layers for p in HEAD_PARAMS}


def fc_table(prefix: str) -> KeyTable:
    """File key -> TaggerHead key for a SampleCNN `fc` layer (v2's supervised/finetuned model)."""
    return {f"{prefix}fc.{p}": f"0.{p}" for p in HEAD_PARAMS}


@dataclass(frozen=True)
class Layout:
    """One official file layout: which key tables make it up."""

    source: str  # recorded as Checkpoint.source
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


def _fail_missing(path: Path, key: str, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path} lacks key {key!r} of a {what}; the file is incomplete or of another model"
    )


def _gather(
    state: StateDict, table: KeyTable, module: nn.Module, path: Path, used: set[str]
) -> StateDict:
    """Pick the module's tensors out of `state` via `table`, checking every key and shape.

    The file keys taken are added to `used`; whatever is left over is an unexpected key.
    """
    inverse = {ours: theirs for theirs, ours in table.items()}
    picked: StateDict = {}
    for ours, ref in module.state_dict().items():
        theirs = inverse[ours]  # every table covers its module completely
        if theirs not in state:
            raise _fail_missing(path, theirs, type(module).__name__)
        tensor = state[theirs]
        if tensor.shape != ref.shape:
            raise CheckpointError(
                f"{path}: key {theirs!r} has shape {list(tensor.shape)}, expected "
                f"{list(ref.shape)}; the file does not fit CLMR's {type(module).__name__}"
            )
        picked[ours] = tensor
        used.add(theirs)
    try:
        module.load_state_dict(picked, strict=True)
    except RuntimeError as exc:  # dtype or other surprises the shape checks did not catch
        raise CheckpointError(f"{path}: cannot load {type(module).__name__}: {exc}") from None
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _dim(state: StateDict, key: str, axis: int, ndim: int, path: Path) -> int:
    tensor = state[key]
    if tensor.ndim != ndim:
        raise CheckpointError(
            f"{path}: key {key!r} has shape {list(tensor.shape)}, expected {ndim} dimensions"
        )
    return int(tensor.shape[axis])


def _load_encoder(
    state: StateDict, table: KeyTable, path: Path, used: set[str]
) -> tuple[EncoderConfig, StateDict]:
    inverse = {ours: theirs for theirs, ours in table.items()}
    channels = []
    for i, default in enumerate(CLMR_CHANNELS):
        key = inverse[f"sequential.{i}.0.weight"]
        # The width comes from the conv's output channels; every tensor is then checked against
        # it, in state-dict order, so the first missing or misshapen key is the one reported.
        width = _dim(state, key, 0, 3, path) if key in state else 0
        channels.append(width or default)
    config = EncoderConfig(channels=tuple(channels))
    return config, _gather(state, table, SampleCNN(config), path, used)


def _load_projector(
    state: StateDict, table: KeyTable, path: Path, used: set[str]
) -> tuple[ProjectorConfig | None, StateDict | None]:
    if not table or not any(key in state for key in table):
        return None, None
    first, second = table  # file keys of 0.weight and 2.weight
    for key in table:
        if key not in state:
            raise _fail_missing(path, key, "SimCLR projector")
    config = ProjectorConfig(
        in_dim=_dim(state, first, 1, 2, path),
        hidden_dim=_dim(state, first, 0, 2, path),
        out_dim=_dim(state, second, 0, 2, path),  # any width: v1 used 128, v2 64
    )
    return config, _gather(state, table, Projector(config), path, used)


def _load_head(
    state: StateDict, table: KeyTable, path: Path, used: set[str]
) -> tuple[HeadConfig, StateDict] | None:
    inverse = {ours: theirs for theirs, ours in table.items()}
    if not any(key in state for key in table):
        return None
    first = inverse["0.weight"]
    if first not in state:
        raise _fail_missing(path, first, "classifier head")
    second = inverse.get("2.weight")
    if second is not None and second in state:  # MLP: Linear -> ReLU -> Linear
        hidden, n_labels = _dim(state, first, 0, 2, path), _dim(state, second, 0, 2, path)
    else:
        hidden, n_labels = 0, _dim(state, first, 0, 2, path)
    config = HeadConfig(in_dim=_dim(state, first, 1, 2, path), n_labels=n_labels, hidden_dim=hidden)
    if all(not bool(state[key].any()) for key in table if key in state):
        # CLMR v2's loader injects an all-zero `fc` so its strict load passes: not a real head.
        warnings.warn(f"{path}: ignoring an all-zero classifier head {first!r}", stacklevel=3)
        used.update(key for key in table if key in state)
        return None
    return config, _gather(state, table, TaggerHead(config), path, used)


def head_labels(n_labels: int) -> list[str]:
    """Names of a head's outputs: the MTAT top-50 order for 50 outputs, else label_0..n-1."""
    if n_labels == len(MTAT_TAGS):
        return list(MTAT_TAGS)
    return [f"label_{i}" for i in range(n_labels)]


def _import_state(state: StateDict, layout: Layout, path: Path) -> Checkpoint:
    ckpt = Checkpoint(source=layout.source)
    used: set[str] = set()
    copies = [table for table in layout.encoders if any(key in state for key in table)]
    if layout.encoders and not copies:
        raise _fail_missing(path, next(iter(layout.encoders[0])), "SampleCNN encoder")
    for table in copies:
        config, encoder_state = _load_encoder(state, table, path, used)
        if ckpt.encoder_state is None:
            ckpt.encoder_config, ckpt.encoder_state = config, encoder_state
        elif any(not torch.equal(encoder_state[k], v) for k, v in ckpt.encoder_state.items()):
            raise CheckpointError(f"{path} holds two different encoder copies; cannot choose one")
    projector = _load_projector(state, layout.projector, path, used)
    ckpt.projector_config, ckpt.projector_state = projector
    for table in layout.heads:
        head = None if ckpt.head_state is not None else _load_head(state, table, path, used)
        if head is not None:
            ckpt.head_config, ckpt.head_state = head
            ckpt.labels = head_labels(head[0].n_labels)
    unexpected = [key for key in state if key not in used]
    if unexpected:
        raise CheckpointError(
            f"{path} has unexpected key {unexpected[0]!r} ({len(unexpected)} in all) for a "
            f"{layout.source}; it is not a CLMR SampleCNN checkpoint"
        )
    enc_cfg, head_cfg = ckpt.encoder_config, ckpt.head_config
    if enc_cfg and head_cfg and head_cfg.in_dim != enc_cfg.embedding_dim:
        raise CheckpointError(
            f"{path}: the head takes {head_cfg.in_dim}-d input but the encoder "
            f"gives {enc_cfg.embedding_dim}-d embeddings"
        )
    return ckpt


def _tensor_dict(payload: Any, path: Path) -> StateDict:
    """The payload as a state dict, or CheckpointError '<path> is not a checkpoint'."""
    if not isinstance(payload, Mapping) or not payload:
        found = "an empty dict" if isinstance(payload, Mapping) else type(payload).__name__
        raise CheckpointError(
            f"{path} is not a checkpoint (found {found}, expected a state dict of tensors); "
            "pass a clmr-embed or official CLMR .pt/.ckpt file"
        )
    for key, value in payload.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path} is not a checkpoint (key {key!r} holds {type(value).__name__}, expected "
                "tensors); pass a clmr-embed or official CLMR .pt/.ckpt file"
            )
    return dict(payload)


def _detect(state: StateDict, path: Path) -> Layout:
    for layout in RAW_LAYOUTS:
        if any(key.startswith(layout.marker) for key in state):
            return layout
    if set(state) <= set(head_table("")):
        return HEAD_ONLY
    raise CheckpointError(
        f"{path} is not a CLMR checkpoint: key {next(iter(state))!r} fits no known layout "
        "(clmr-embed, official CLMR v1 / 1550-epoch / Lightning, finetuner head, SampleCNN)"
    )


def import_official(payload: Any, path: Path) -> Checkpoint:
    """Recognise an official CLMR file's layout and import it with strict key and shape checks.

    Args:
        payload: what torch.load returned for `path`.
        path: the file, named in every error.

    Returns:
        A Checkpoint holding the parts the file has (encoder, projector, head) and its `source`.

    Raises:
        CheckpointError: not a dict of tensors, an unknown layout, or a missing, unexpected or
            misshapen key (the message names the file and the first such key).
    """
    path = Path(path)
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        ckpt = _import_state(_tensor_dict(payload["state_dict"], path), LIGHTNING, path)
        ckpt.step = int(payload.get("global_step", 0) or 0)
        ckpt.extra = {"epoch": payload.get("epoch")}
        return ckpt
    state = _tensor_dict(payload, path)
    return _import_state(state, _detect(state, path), path)

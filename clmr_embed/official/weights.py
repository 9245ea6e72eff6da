"""A checkpoint's layout recognised and its weights taken out as arrays, every key checked."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clmr_embed.artifact import ARCHITECTURES, METHODS
from clmr_embed.constants import (
    CHECKPOINT_FORMAT,
    CLMR_CHANNELS,
    MTAT_TAGS,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
)
from clmr_embed.errors import CheckpointError
from clmr_embed.official.layouts import (
    BARE,
    HEAD_ONLY,
    LIGHTNING,
    RAW_LAYOUTS,
    KeyTable,
    Layout,
    encoder_shapes,
    head_shapes,
    head_table,
    projector_shapes,
)

Arrays = dict[str, np.ndarray]  # a state dict of numpy arrays, our module's keys


@dataclass
class Weights:
    """The parts a checkpoint holds, in our modules' keys; any part may be missing but one."""

    source: str  # the layout, e.g. "official CLMR v1 raw state dict"
    encoder: Arrays | None = None  # SampleCNN state (sequential.*), float32 (+ int64 counters)
    channels: tuple[int, ...] = CLMR_CHANNELS  # the encoder's block widths
    sample_rate: int = SAMPLE_RATE  # Hz the encoder was trained at (only ours record it)
    projector: Arrays | None = None  # SimCLR projector (0.weight, 2.weight)
    projector_dims: tuple[int, int, int] = (0, 0, 0)  # (in, hidden, out)
    head: Arrays | None = None  # classifier head (0.*, and 2.* for an MLP)
    head_dims: tuple[int, int, int] = (0, 0, 0)  # (in, hidden, n_labels)
    labels: tuple[str, ...] = ()  # the head's output names
    task: str = "multilabel"  # the head's task
    step: int = 0  # optimiser steps (Lightning's global_step; ours)
    extra: dict[str, Any] = field(default_factory=dict)  # epoch, the `trained` declaration, ...
    architecture: str = ARCHITECTURES[0]  # "samplecnn", or "cpc" (encoder: conv.*, gru.*)
    window_samples: int = WINDOW_SAMPLES  # samples per window (only CPC checkpoints vary it)
    method: str = METHODS[0]  # how the encoder was pre-trained (clmr.method)

    @property
    def embedding_dim(self) -> int:
        """The encoder's output width: SampleCNN's last block, CPC's GRU units."""
        if self.architecture == ARCHITECTURES[1] and self.encoder is not None:
            return int(self.encoder["gru.weight_hh_l0"].shape[1])
        return self.channels[-1]


def head_labels(n_labels: int) -> tuple[str, ...]:
    """Names of a head's outputs: the MTAT top-50 order for 50 outputs, else label_0..n-1."""
    if n_labels == len(MTAT_TAGS):
        return MTAT_TAGS
    return tuple(f"label_{i}" for i in range(n_labels))


def _fail_missing(path: Path, key: str, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path} lacks key {key!r} of a {what}; the file is incomplete or of another model"
    )


def _gather(
    state: Mapping[str, np.ndarray],
    table: KeyTable,
    expected: tuple[dict[str, tuple[int, ...]], str],
    path: Path,
    used: set[str],
) -> Arrays:
    """Pick a module's arrays out of `state` via `table`, checking every key and shape.

    `expected` is (our key -> shape, the module's name). The file keys taken are added to
    `used`; whatever is left over is an unexpected key.
    """
    shapes, module = expected
    inverse = {ours: theirs for theirs, ours in table.items()}
    picked: Arrays = {}
    for ours, shape in shapes.items():
        theirs = inverse[ours]  # every table covers its module completely
        if theirs not in state:
            raise _fail_missing(path, theirs, module)
        array = state[theirs]
        if tuple(array.shape) != shape:
            raise CheckpointError(
                f"{path}: key {theirs!r} has shape {list(array.shape)}, expected "
                f"{list(shape)}; the file does not fit CLMR's {module}"
            )
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise CheckpointError(f"{path}: key {theirs!r} holds {array.dtype}, not numbers")
        counter = ours.endswith("num_batches_tracked")
        picked[ours] = np.asarray(array, np.int64 if counter else np.float32)
        used.add(theirs)
    return picked


def _dim(state: Mapping[str, np.ndarray], key: str, axis: int, ndim: int, path: Path) -> int:
    array = state[key]
    if array.ndim != ndim:
        raise CheckpointError(
            f"{path}: key {key!r} has shape {list(array.shape)}, expected {ndim} dimensions"
        )
    return int(array.shape[axis])


def _encoder(
    state: Mapping[str, np.ndarray], table: KeyTable, path: Path, used: set[str]
) -> tuple[tuple[int, ...], Arrays]:
    inverse = {ours: theirs for theirs, ours in table.items()}
    channels = []
    for i, default in enumerate(CLMR_CHANNELS):
        key = inverse[f"sequential.{i}.0.weight"]
        # The width comes from the conv's output channels; every tensor is then checked against
        # it, in state-dict order, so the first missing or misshapen key is the one reported.
        width = _dim(state, key, 0, 3, path) if key in state else 0
        channels.append(width or default)
    shapes = encoder_shapes(tuple(channels))
    return tuple(channels), _gather(state, table, (shapes, "SampleCNN"), path, used)


def _projector(
    state: Mapping[str, np.ndarray], table: KeyTable, path: Path, used: set[str]
) -> tuple[tuple[int, int, int], Arrays] | None:
    if not table or not any(key in state for key in table):
        return None
    first, second = table  # file keys of 0.weight and 2.weight
    for key in table:
        if key not in state:
            raise _fail_missing(path, key, "SimCLR projector")
    dims = (  # any output width: v1 used 128, v2 64
        _dim(state, first, 1, 2, path),
        _dim(state, first, 0, 2, path),
        _dim(state, second, 0, 2, path),
    )
    return dims, _gather(state, table, (projector_shapes(*dims), "Projector"), path, used)


def _head(
    state: Mapping[str, np.ndarray], table: KeyTable, path: Path, used: set[str]
) -> tuple[tuple[int, int, int], Arrays] | None:
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
    dims = (_dim(state, first, 1, 2, path), hidden, n_labels)
    if all(not state[key].any() for key in table if key in state):
        # CLMR v2's loader injects an all-zero `fc` so its strict load passes: not a real head.
        warnings.warn(f"{path}: ignoring an all-zero classifier head {first!r}", stacklevel=3)
        used.update(key for key in table if key in state)
        return None
    shapes = head_shapes(*dims)
    table = {theirs: ours for theirs, ours in table.items() if ours in shapes}
    return dims, _gather(state, table, (shapes, "TaggerHead"), path, used)


def _encoders(
    weights: Weights, state: Mapping[str, np.ndarray], layout: Layout, path: Path, used: set[str]
) -> None:
    copies = [table for table in layout.encoders if any(key in state for key in table)]
    if layout.encoders and not copies:
        raise _fail_missing(path, next(iter(layout.encoders[0])), "SampleCNN encoder")
    for table in copies:
        channels, arrays = _encoder(state, table, path, used)
        if weights.encoder is None:
            weights.channels, weights.encoder = channels, arrays
        elif any(not np.array_equal(arrays[k], v) for k, v in weights.encoder.items()):
            raise CheckpointError(f"{path} holds two different encoder copies; cannot choose one")


def _import_state(state: Mapping[str, np.ndarray], layout: Layout, path: Path) -> Weights:
    weights = Weights(source=layout.source)
    used: set[str] = set()
    _encoders(weights, state, layout, path, used)
    projector = _projector(state, layout.projector, path, used)
    if projector is not None:
        weights.projector_dims, weights.projector = projector
    for table in layout.heads:
        head = None if weights.head is not None else _head(state, table, path, used)
        if head is not None:
            weights.head_dims, weights.head = head
            weights.labels = head_labels(head[0][2])
    unexpected = [key for key in state if key not in used]
    if unexpected:
        raise CheckpointError(
            f"{path} has unexpected key {unexpected[0]!r} ({len(unexpected)} in all) for a "
            f"{layout.source}; it is not a CLMR SampleCNN checkpoint"
        )
    fits = weights.encoder is None or weights.head is None
    if not fits and weights.head_dims[0] != weights.channels[-1]:
        raise CheckpointError(
            f"{path}: the head takes {weights.head_dims[0]}-d input but the encoder "
            f"gives {weights.channels[-1]}-d embeddings"
        )
    return weights


def _arrays(payload: Any, path: Path) -> dict[str, np.ndarray]:
    """The payload as a state dict, or CheckpointError '<path> is not a checkpoint'."""
    if not isinstance(payload, Mapping) or not payload:
        found = "an empty dict" if isinstance(payload, Mapping) else type(payload).__name__
        raise CheckpointError(
            f"{path} is not a checkpoint (found {found}, expected a state dict of tensors); "
            "pass a clmr-embed or official CLMR .pt/.ckpt file"
        )
    for key, value in payload.items():
        if not isinstance(key, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"{path} is not a checkpoint (key {key!r} holds {type(value).__name__}, expected "
                "tensors); pass a clmr-embed or official CLMR .pt/.ckpt file"
            )
    return dict(payload)


def _detect(state: Mapping[str, np.ndarray], path: Path) -> Layout:
    for layout in RAW_LAYOUTS:
        if any(key.startswith(layout.marker) for key in state):
            return layout
    if set(state) <= set(head_table("")):
        return HEAD_ONLY
    raise CheckpointError(
        f"{path} is not a CLMR checkpoint: key {next(iter(state))!r} fits no known layout "
        "(clmr-embed, official CLMR v1 / 1550-epoch / Lightning, finetuner head, SampleCNN)"
    )


def _ours(payload: Mapping[str, Any], path: Path) -> Weights:
    """A clmr-embed checkpoint (its states already use our keys), checked like the others."""
    if payload.get("architecture", ARCHITECTURES[0]) != ARCHITECTURES[0]:
        raise CheckpointError(
            f"{path} holds a {payload['architecture']} encoder, not a SampleCNN; convert it with "
            "clmr_embed.official.convert (which reads CPC too) or `clmr-embed export`"
        )
    state = {**(payload.get("encoder_state") or {}), **(payload.get("head_state") or {})}
    layout = BARE if payload.get("encoder_state") else HEAD_ONLY
    head_only = Layout(layout.source, layout.marker, layout.encoders, heads=(head_table(""),))
    weights = _import_state(_arrays(state, path), head_only, path)
    weights.source = str(payload.get("source") or "clmr-embed")
    weights.sample_rate = int((payload.get("encoder_config") or {}).get("sample_rate", SAMPLE_RATE))
    head_config = payload.get("head_config") or {}
    weights.task = str(head_config.get("task", weights.task))
    weights.labels = tuple(payload.get("labels") or weights.labels)
    weights.step = int(payload.get("step") or 0)
    weights.extra = dict(payload.get("extra") or {})
    return weights


def import_weights(payload: Any, path: Path) -> Weights:
    """Recognise a checkpoint's layout and import it with strict key and shape checks.

    Args:
        payload: the file's contents, tensors as numpy arrays (clmr_embed.official.torchfile).
        path: the file, named in every error.

    Raises:
        CheckpointError: not a dict of tensors, an unknown layout, or a missing, unexpected or
            misshapen key (the message names the file and the first such key).
    """
    path = Path(path)
    if isinstance(payload, Mapping) and payload.get("format") == CHECKPOINT_FORMAT:
        return _ours(payload, path)
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        weights = _import_state(_arrays(payload["state_dict"], path), LIGHTNING, path)
        weights.step = int(payload.get("global_step", 0) or 0)
        weights.extra = {"epoch": payload.get("epoch")}
        return weights
    state = _arrays(payload, path)
    return _import_state(state, _detect(state, path), path)

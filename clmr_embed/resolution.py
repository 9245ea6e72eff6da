"""The one model resolution: a name, an ONNX file or a checkpoint -> the ONNX file that runs.

Every command and API that takes a model (`extract`, `tag`, `similar`, `train linear
--encoder`, `Embedder`) resolves it here, so each accepts the same forms:

- a registered name (`clmr-free` bundled; `clmr-mtat` fetched and converted on first use),
- an encoder or tagger `.onnx` file (a tagger's `embedding` output serves as the encoder),
- a checkpoint (`.pt`, `.pth`, `.ckpt`; official CLMR or clmr-embed's own), converted without
  torch once and cached by its sha256.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from clmr_embed.digest import ModelFile, file_sha256
from clmr_embed.errors import ModelArtifactError
from clmr_embed.registry import (
    DEFAULT_MODEL,
    ENV_MODEL,
    MODELS,
    bundled_path,
    cache_dir,
    cached_path,
)

if TYPE_CHECKING:
    from clmr_embed.official.release import Notify

# The converters (onnx, ~1 s to import) load only when a checkpoint or a fetched model needs
# converting: every extract run and each of its decode workers imports this module.

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
ACCEPTED = (
    f"a model name ({', '.join(sorted(MODELS))}), an encoder or tagger .onnx file, "
    f"or a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})"
)


def converted_path(checkpoint: Path, sha256: str) -> Path:
    """Where a checkpoint's conversion is cached (keyed by the file's sha256)."""
    return cache_dir() / "converted" / f"{sha256[:24]}-{checkpoint.stem}.onnx"


def _checkpoint_model(checkpoint: Path, notify: Notify | None) -> Path:
    from clmr_embed.official.convert import Conversion, convert

    target = converted_path(checkpoint, file_sha256(checkpoint))
    if target.is_file():
        return target
    if notify is not None:
        notify(f"converting {checkpoint} to ONNX (once; cached in {target.parent}) ...")
    try:
        convert(Conversion(checkpoint, target))
    except OSError:  # a read-only cache: convert into a temporary folder instead
        target = Path(tempfile.mkdtemp(prefix="clmr-model-")) / target.name
        convert(Conversion(checkpoint, target))
    return target


def _named_model(name: str, notify: Notify | None) -> Path:
    entry = MODELS[name]
    if entry.bundled:
        path = bundled_path(entry)
        if not path.is_file():
            raise ModelArtifactError(f"bundled model file {path} is missing; reinstall clmr-embed")
        return path
    cached = cached_path(entry.name)
    if cached.is_file():
        return cached
    from clmr_embed.official.release import fetch_and_convert

    return fetch_and_convert(entry, notify)


def resolve_model(model: str | Path | None, notify: Notify | None = None) -> Path:
    """The ONNX file of `model`; None: $CLMR_EMBED_MODEL, else the bundled default.

    Args:
        model: a registered name, an .onnx file or a checkpoint (see the module docstring).
        notify: called with one line before slow first-use work (a download, a conversion).

    Raises:
        ModelArtifactError: an unknown name, a missing file or folder, or a failed download.
        CheckpointError: a checkpoint that is unreadable or not a CLMR SampleCNN.
    """
    value = str(model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL)
    if value in MODELS:
        return _named_model(value, notify)
    path = Path(value).expanduser()
    if path.is_file():
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return _checkpoint_model(path, notify)
        return path
    if path.is_dir():
        raise ModelArtifactError(f"model {value} is a folder; give the model file inside it")
    raise ModelArtifactError(f"model {value!r} does not exist; expected {ACCEPTED}")


def resolve_model_file(
    model: str | Path | ModelFile | None, notify: Notify | None = None
) -> ModelFile:
    """`model` resolved (as resolve_model) and hashed, once: what engines open. A ModelFile is
    returned as it is, so a caller that resolved it already passes it on without rehashing."""
    if isinstance(model, ModelFile):
        return model
    return ModelFile.hashed(resolve_model(model, notify))

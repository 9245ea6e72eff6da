"""Content hashes of files (model artifacts, audio files, checkpoints); a model file's identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (hashlib releases the GIL, so threads hash in parallel)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class ModelFile:
    """A resolved model file and its sha256 (the model's identity in stores, caches and checks),
    hashed once per run and handed to whatever opens it."""

    path: Path
    sha256: str

    @classmethod
    def hashed(cls, path: Path) -> ModelFile:
        """The file at `path`, hashed now."""
        return cls(Path(path), file_sha256(path))

"""Registered model names and where their files live: the package, the cache, the release."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ENV_MODEL = "CLMR_EMBED_MODEL"  # default model name or path, below an explicit one
ENV_CACHE = "CLMR_EMBED_CACHE"  # cache folder, above $XDG_CACHE_HOME/clmr-embed
ENV_RELEASE_URL = "CLMR_EMBED_RELEASE_URL"  # base URL of the CLMR release assets (mirrors, tests)
CLMR_RELEASE_URL = "https://github.com/Spijkervet/CLMR/releases/download/2.0"


@dataclass(frozen=True)
class Asset:
    """One downloadable release file."""

    archive: str  # file name under the release URL (a .zip)
    member: str  # the checkpoint inside the archive
    sha256: str  # expected sha256 of `member`; "" where no trusted hash is published


@dataclass(frozen=True)
class ModelEntry:
    """A registered model name."""

    name: str  # what a model argument accepts
    description: str  # one line for `clmr-embed models`
    licence: str  # licence of the weights
    bundled: str = ""  # file name inside clmr_embed/models, for models shipped in the package
    assets: tuple[Asset, ...] = ()  # release files to download and convert, for the others
    trained: bool = True  # False for a random-init placeholder


MODELS: dict[str, ModelEntry] = {
    "clmr-free": ModelEntry(
        name="clmr-free",
        description="v2: SampleCNN distilled from musicnn on free game music (clean-view "
        "recipe), 50-tag MTAT head distilled from musicnn; see docs/models.md",
        licence="MIT weights; encoder and head distilled from musicnn (ISC), trained on "
        "MagnaTagATune (CC BY-NC-SA audio), on GPL-2+ / CC BY-SA / CC BY / CC0 music",
        bundled="clmr-free.onnx",
    ),
    "clmr-mtat": ModelEntry(
        name="clmr-mtat",
        description="official CLMR release 2.0: 10,000-epoch encoder + MTAT head "
        "(results.json: tag ROC-AUC 88.45 / PR-AUC 35.35)",
        licence="Apache-2.0 (Spijkervet/CLMR); trained on MagnaTagATune (CC BY-NC-SA audio)",
        assets=(
            Asset("clmr_checkpoint_10000.zip", "clmr_checkpoint_10000.pt", ""),
            Asset(
                "finetuner_checkpoint_200.zip",
                "finetuner_checkpoint_200.pt",
                "547019f4e7967afc2a34b547a537bcf53cad62d77ea3498bdc077a80b1bbe260",
            ),
        ),
    ),
}
DEFAULT_MODEL = "clmr-free"


def release_url() -> str:
    """Base URL of the official release assets (overridable for mirrors and tests)."""
    return os.environ.get(ENV_RELEASE_URL, CLMR_RELEASE_URL).rstrip("/")


def cache_dir() -> Path:
    """clmr-embed's cache: $CLMR_EMBED_CACHE, else $XDG_CACHE_HOME/clmr-embed, else ~/.cache."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clmr-embed"


def cached_path(name: str) -> Path:
    """Where a converted downloadable model lives in the cache."""
    return cache_dir() / "models" / f"{name}.onnx"


def bundled_path(entry: ModelEntry) -> Path:
    """The file of a model shipped inside the package."""
    return Path(str(resources.files("clmr_embed.models").joinpath(entry.bundled)))


def is_available(entry: ModelEntry) -> bool:
    """True if the model can be used offline now (bundled, or converted in the cache)."""
    if entry.bundled:
        return bundled_path(entry).is_file()
    return cached_path(entry.name).is_file()

"""Model names -> ONNX files: the bundled default, the cache dir, and the official CLMR release."""

from __future__ import annotations

import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clmr_embed.atomic import atomic_path
from clmr_embed.digest import file_sha256
from clmr_embed.errors import ModelArtifactError

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
        description="CLMR SampleCNN pre-trained by clmr-embed on ~12 h of free music (small "
        "compute), 50-tag MTAT head distilled from musicnn; see docs/models.md",
        licence="MIT weights; pre-trained on GPL-2+ / CC BY-SA / CC BY / CC0 music; head "
        "distilled from musicnn (ISC), trained on MagnaTagATune (CC BY-NC-SA audio)",
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


class ModelNotCachedError(ModelArtifactError):
    """A downloadable model is not in the cache yet (the CLI can fetch and convert it)."""

    def __init__(self, entry: ModelEntry) -> None:
        urls = " and ".join(f"{release_url()}/{a.archive}" for a in entry.assets)
        super().__init__(
            f"model {entry.name!r} is not cached in {cache_dir()}; with network access and "
            f"pip install 'clmr-embed[export]' it is fetched automatically. Offline: download "
            f"{urls}, export the encoder and head checkpoints to ONNX with `clmr-embed export` "
            f"and use the exported <name>-tagger.onnx file as the model"
        )
        self.entry = entry


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


def resolve_model(name_or_path: str | Path | None) -> Path:
    """The ONNX file of a model path or registered name; None: $CLMR_EMBED_MODEL, else the default.

    Raises:
        ModelNotCachedError: a downloadable model that is not in the cache yet.
        ModelArtifactError: an unknown name or a missing file, listing the choices.
    """
    value = str(name_or_path or os.environ.get(ENV_MODEL) or DEFAULT_MODEL)
    if value in MODELS:
        entry = MODELS[value]
        path = bundled_path(entry) if entry.bundled else cached_path(entry.name)
        if path.is_file():
            return path
        if entry.bundled:
            raise ModelArtifactError(f"bundled model file {path} is missing; reinstall clmr-embed")
        raise ModelNotCachedError(entry)
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise ModelArtifactError(f"model {value} is a folder; give the .onnx file inside it")
    raise ModelArtifactError(
        f"model {value!r} is neither an existing file nor a model name; "
        f"expected a path to an .onnx file or one of {sorted(MODELS)}"
    )


def download_assets(entry: ModelEntry, dest: Path, timeout_s: float = 60.0) -> list[Path]:
    """Download and unzip a model's release assets into `dest`; check each member's sha256.

    Returns:
        The extracted checkpoint files, in the order of `entry.assets`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for asset in entry.assets:
        url = f"{release_url()}/{asset.archive}"
        archive = dest / asset.archive
        try:
            with (
                atomic_path(archive) as tmp,
                urllib.request.urlopen(url, timeout=timeout_s) as response,
                open(tmp, "wb") as out,
            ):
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise ModelArtifactError(
                f"could not download {url} ({exc}); offline, `clmr-embed models` shows how to "
                "use local files instead"
            ) from None
        try:
            with zipfile.ZipFile(archive) as bundle:
                names = [n for n in bundle.namelist() if Path(n).name == asset.member]
                if not names:
                    raise ModelArtifactError(f"{url} does not contain {asset.member}")
                target = dest / asset.member
                with (
                    atomic_path(target) as tmp,
                    bundle.open(names[0]) as src,
                    open(tmp, "wb") as out,
                ):
                    shutil.copyfileobj(src, out)
        except zipfile.BadZipFile:
            raise ModelArtifactError(f"{url} is not a zip archive") from None
        if asset.sha256 and file_sha256(target) != asset.sha256:
            raise ModelArtifactError(
                f"{asset.member} from {url} has sha256 {file_sha256(target)}, expected "
                f"{asset.sha256}; the download is corrupt or not the official file"
            )
        files.append(target)
    return files

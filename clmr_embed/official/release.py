"""The official CLMR release on first use: download, check, convert to a tagger, cache; no torch."""

from __future__ import annotations

import http.client
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from clmr_embed.atomic import atomic_path
from clmr_embed.digest import file_sha256
from clmr_embed.errors import CheckpointError, ModelArtifactError
from clmr_embed.official.convert import Conversion, convert
from clmr_embed.registry import (
    ENV_RELEASE_URL,
    Asset,
    ModelEntry,
    cache_dir,
    cached_path,
    release_url,
)

Notify = Callable[[str], None]  # receives one progress line (the CLI prints it on stderr)
MAX_MEMBER_BYTES = 2**30  # the release's checkpoints are ~10 MB; more is not the release


def offline_hint(entry: ModelEntry) -> str:
    """How to use the release without network access from this process."""
    archives = " and ".join(f"{release_url()}/{a.archive}" for a in entry.assets)
    return (
        f"offline, download {archives} elsewhere into one folder DIR and set "
        f"{ENV_RELEASE_URL}=file:///absolute/path/to/DIR (converted once, then cached), or "
        f"pass --model with the unzipped {entry.assets[0].member} for the encoder alone"
    )


def _download(url: str, archive: Path, timeout_s: float) -> None:
    try:
        with (
            atomic_path(archive) as tmp,
            urllib.request.urlopen(url, timeout=timeout_s) as response,
            open(tmp, "wb") as out,
        ):
            shutil.copyfileobj(response, out)
    except (OSError, http.client.HTTPException) as exc:  # IncompleteRead: a cut connection
        raise ModelArtifactError(f"could not download {url} ({exc})") from None


def _unpack(asset: Asset, url: str, archive: Path, dest: Path) -> Path:
    """The asset's checkpoint out of its archive, CRC- and (where known) sha256-checked."""
    target = dest / asset.member
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = [n for n in bundle.namelist() if Path(n).name == asset.member]
            if not names:
                raise ModelArtifactError(f"{url} does not contain {asset.member}")
            if bundle.getinfo(names[0]).file_size > MAX_MEMBER_BYTES:
                raise ModelArtifactError(
                    f"{asset.member} in {url} claims {bundle.getinfo(names[0]).file_size} bytes; "
                    "that is not the official checkpoint"
                )
            with atomic_path(target) as tmp, bundle.open(names[0]) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)  # zipfile checks each member's CRC-32 at its end
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ModelArtifactError(
            f"{url} is not a complete zip archive ({exc}): the download is truncated or corrupt"
        ) from None
    if asset.sha256 and file_sha256(target) != asset.sha256:
        raise ModelArtifactError(
            f"{asset.member} from {url} has sha256 {file_sha256(target)}, expected "
            f"{asset.sha256}; the download is corrupt or not the official file"
        )
    return target


def download_assets(entry: ModelEntry, dest: Path, timeout_s: float = 60.0) -> list[Path]:
    """Download and unzip a model's release assets into `dest`; a bad download is removed.

    Returns:
        The extracted checkpoint files, in the order of `entry.assets`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for asset in entry.assets:
        url = f"{release_url()}/{asset.archive}"
        archive = dest / asset.archive
        _download(url, archive, timeout_s)
        try:
            files.append(_unpack(asset, url, archive, dest))
        except ModelArtifactError:
            for bad in (archive, dest / asset.member):
                bad.unlink(missing_ok=True)
            raise
        archive.unlink()  # the checkpoint is what is kept
    return files


def fetch_and_convert(entry: ModelEntry, notify: Notify | None = None) -> Path:
    """Download `entry`'s release once, check it, convert it, and install the tagger in the cache.

    The encoder's structure (the 77 official keys and shapes) is checked on import and the
    head's sha256 against the known release file; the ONNX file records the source sha256.
    Nothing half-made is left: the downloads are removed after the conversion or a failure.

    Returns:
        The cached ONNX tagger, e.g. ~/.cache/clmr-embed/models/clmr-mtat.onnx.
    """
    target = cached_path(entry.name)
    if target.is_file():
        return target
    if notify is not None:
        notify(f"fetching {entry.name} from {release_url()} (once; it is cached afterwards) ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="download-") as tmp:
        try:
            encoder, head = download_assets(entry, Path(tmp))
            convert(Conversion(encoder, target, head, entry.name, entry.licence))
        except (ModelArtifactError, CheckpointError) as exc:
            raise ModelArtifactError(f"{exc}; {offline_hint(entry)}") from None
    return target

"""Model names -> files, and the release download: checked, atomic, nothing half-written left."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from clmr_embed.errors import ModelArtifactError
from clmr_embed.registry import Asset, ModelEntry, download_assets

CHECKPOINT = b"weights" * 1000


def _release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A release folder served by file:// URLs, with one zip holding `nested/ckpt.pt`."""
    folder = tmp_path / "release"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.zip", "w") as bundle:
        bundle.writestr("nested/ckpt.pt", CHECKPOINT)
    (folder / "broken.zip").write_bytes(b"not a zip")
    monkeypatch.setenv("CLMR_EMBED_RELEASE_URL", folder.as_uri())
    return hashlib.sha256(CHECKPOINT).hexdigest()


def _entry(*assets: Asset) -> ModelEntry:
    return ModelEntry("test-model", "a test", "none", assets=assets)


def test_download_unzips_and_checks_the_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = _release(tmp_path, monkeypatch)
    dest = tmp_path / "dest"
    files = download_assets(_entry(Asset("model.zip", "ckpt.pt", sha)), dest)
    assert files == [dest / "ckpt.pt"] and files[0].read_bytes() == CHECKPOINT
    assert sorted(p.name for p in dest.iterdir()) == ["ckpt.pt", "model.zip"]  # no temp files


@pytest.mark.parametrize(
    ("asset", "message"),
    [
        (Asset("model.zip", "ckpt.pt", "0" * 64), "sha256"),
        (Asset("model.zip", "other.pt", ""), "does not contain other.pt"),
        (Asset("broken.zip", "ckpt.pt", ""), "not a zip archive"),
        (Asset("missing.zip", "ckpt.pt", ""), "could not download"),
    ],
)
def test_bad_downloads_raise_naming_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asset: Asset, message: str
) -> None:
    _release(tmp_path, monkeypatch)
    dest = tmp_path / "dest"
    with pytest.raises(ModelArtifactError, match=message) as caught:
        download_assets(_entry(asset), dest)
    assert asset.archive in str(caught.value)
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # temp files removed


def test_model_lookup_errors_name_the_value_not_a_flag(tmp_path: Path) -> None:
    from clmr_embed.registry import MODELS, ModelNotCachedError, resolve_model

    with pytest.raises(ModelArtifactError, match="is a folder") as folder:
        resolve_model(tmp_path)
    with pytest.raises(ModelArtifactError, match="clmr-free") as unknown:
        resolve_model("no-such-model")
    not_cached = str(ModelNotCachedError(MODELS["clmr-mtat"]))
    for message in (str(folder.value), str(unknown.value), not_cached):
        assert "--" not in message
    assert "no-such-model" in str(unknown.value) and str(tmp_path) in str(folder.value)

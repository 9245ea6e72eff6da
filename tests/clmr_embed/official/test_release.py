"""The official release on first use, without torch: fetched, checked, converted, cached once."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")  # only to write the served files

from clmr_embed.errors import ModelArtifactError
from clmr_embed.official.release import download_assets
from clmr_embed.registry import MODELS, Asset, ModelEntry
from tests.fixtures.audio import write_sine
from tests.fixtures.no_torch import blocked_torch_env
from tests.fixtures.official import save, v1_raw

CHECKPOINT = b"weights" * 1000


def _zip(folder: Path, archive: str, member: Path) -> Path:
    with zipfile.ZipFile(folder / archive, "w") as bundle:
        bundle.write(member, member.name)
    return folder / archive


def _file_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A release folder served by file:// URLs, with one zip holding `nested/ckpt.pt`."""
    folder = tmp_path / "release"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.zip", "w") as bundle:
        bundle.writestr("nested/ckpt.pt", CHECKPOINT)
    (folder / "broken.zip").write_bytes(b"not a zip")
    whole = (folder / "model.zip").read_bytes()
    (folder / "cut.zip").write_bytes(whole[: len(whole) // 2])
    flipped = bytearray(whole)
    flipped[len(whole) // 3] ^= 0xFF  # inside the member's data: its CRC-32 no longer matches
    (folder / "flipped.zip").write_bytes(bytes(flipped))
    monkeypatch.setenv("CLMR_EMBED_RELEASE_URL", folder.as_uri())
    return hashlib.sha256(CHECKPOINT).hexdigest()


def _entry(*assets: Asset) -> ModelEntry:
    return ModelEntry("test-model", "a test", "none", assets=assets)


def test_download_unzips_checks_and_keeps_only_the_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = _file_release(tmp_path, monkeypatch)
    dest = tmp_path / "dest"
    files = download_assets(_entry(Asset("model.zip", "ckpt.pt", sha)), dest)
    assert files == [dest / "ckpt.pt"] and files[0].read_bytes() == CHECKPOINT
    assert [p.name for p in dest.iterdir()] == ["ckpt.pt"]  # no archive, no temp files


@pytest.mark.parametrize(
    ("asset", "message"),
    [
        (Asset("model.zip", "ckpt.pt", "0" * 64), "sha256"),
        (Asset("model.zip", "other.pt", ""), "does not contain other.pt"),
        (Asset("broken.zip", "ckpt.pt", ""), "not a complete zip archive"),
        (Asset("cut.zip", "ckpt.pt", ""), "truncated or corrupt"),
        (Asset("flipped.zip", "ckpt.pt", ""), "truncated or corrupt"),
        (Asset("missing.zip", "ckpt.pt", ""), "could not download"),
    ],
)
def test_bad_downloads_are_refused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asset: Asset, message: str
) -> None:
    _file_release(tmp_path, monkeypatch)
    dest = tmp_path / "dest"
    with pytest.raises(ModelArtifactError, match=message) as caught:
        download_assets(_entry(asset), dest)
    assert asset.archive in str(caught.value) and "--" not in str(caught.value)
    assert list(dest.iterdir()) == []  # nothing half-downloaded or half-extracted is left


@pytest.fixture()
def release_server(tmp_path: Path, shared_dir: Path) -> Iterator[tuple[str, Path]]:
    """Serve an official-layout v1 encoder (random weights) and the real MTAT head over HTTP."""
    site = tmp_path / "site"
    site.mkdir()
    raw = save(tmp_path / "clmr_checkpoint_10000.pt", v1_raw(0))
    _zip(site, "clmr_checkpoint_10000.zip", raw)
    _zip(site, "finetuner_checkpoint_200.zip", shared_dir / "weights/finetuner_checkpoint_200.pt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()


def _tag(tmp_path: Path, url: str, song: Path) -> subprocess.CompletedProcess[str]:
    """`clmr-embed tag SONG --model clmr-mtat --json` where `import torch` fails."""
    env = blocked_torch_env(tmp_path)
    env.update(CLMR_EMBED_RELEASE_URL=url, CLMR_EMBED_CACHE=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "clmr_embed", "tag", str(song), "--model", "clmr-mtat"]
    return subprocess.run([*command, "--json"], env=env, capture_output=True, text=True)


@pytest.mark.slow  # subprocesses
def test_tag_fetches_converts_and_reuses_without_torch(
    tmp_path: Path, release_server: tuple[str, Path]
) -> None:
    url, site = release_server
    song = write_sine(tmp_path / "song.wav", 440, 6.0, 22050)
    first = _tag(tmp_path, url, song)
    assert first.returncode == 0, first.stderr
    assert "fetching clmr-mtat" in first.stderr
    record = json.loads(first.stdout)
    assert record["model"] == "clmr-mtat" and len(record["tags"]) == 10 and record["trained"]
    cache = tmp_path / "cache"
    assert (cache / "models" / "clmr-mtat.onnx").is_file()
    assert [p.name for p in cache.iterdir()] == ["models"]  # the downloads are gone
    for archive in site.iterdir():  # offline from now on: the cache must serve it
        archive.unlink()
    again = _tag(tmp_path, url, song)
    assert again.returncode == 0, again.stderr
    assert "fetching" not in again.stderr and json.loads(again.stdout)["tags"] == record["tags"]


@pytest.mark.slow  # a subprocess
def test_a_corrupt_head_is_refused_and_nothing_is_cached(
    tmp_path: Path, release_server: tuple[str, Path]
) -> None:
    url, site = release_server
    bad = tmp_path / "finetuner_checkpoint_200.pt"
    bad.write_bytes(b"not the official head")
    _zip(site, "finetuner_checkpoint_200.zip", bad)
    result = _tag(tmp_path, url, write_sine(tmp_path / "song.wav", 440, 3.0, 22050))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "sha256" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "cache" / "models" / "clmr-mtat.onnx").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["models"]


@pytest.mark.slow  # a subprocess
def test_offline_first_use_says_how_to_use_local_files(tmp_path: Path) -> None:
    result = _tag(tmp_path, "http://127.0.0.1:9", write_sine(tmp_path / "s.wav", 440, 3.0, 22050))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for hint in ("could not download", "CLMR_EMBED_RELEASE_URL=file://", "--model"):
        assert hint in result.stderr


def test_the_offline_way_a_file_url_of_the_downloads_works(
    tmp_path: Path, release_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clmr_embed.resolution import resolve_model

    _, site = release_server  # the two zips, as a user would download them by hand
    monkeypatch.setenv("CLMR_EMBED_RELEASE_URL", site.as_uri())
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    path = resolve_model("clmr-mtat")
    assert path == tmp_path / "cache" / "models" / "clmr-mtat.onnx" and path.is_file()
    assert MODELS["clmr-mtat"].assets[1].sha256  # the head's hash is checked, not skipped


def test_a_member_larger_than_any_release_checkpoint_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = _file_release(tmp_path, monkeypatch)
    monkeypatch.setattr("clmr_embed.official.release.MAX_MEMBER_BYTES", len(CHECKPOINT) - 1)
    dest = tmp_path / "dest"
    with pytest.raises(ModelArtifactError, match="claims .* bytes"):
        download_assets(_entry(Asset("model.zip", "ckpt.pt", sha)), dest)
    assert list(dest.iterdir()) == []

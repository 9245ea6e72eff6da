"""`--model clmr-mtat`: fetched once from a (local) release server, checked, converted, cached."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.cli import app  # noqa: E402
from tests.fixtures.audio import write_sine  # noqa: E402
from training.config import EncoderConfig  # noqa: E402
from training.samplecnn import SampleCNN  # noqa: E402

runner = CliRunner()


def _zip(folder: Path, archive: str, member: Path) -> None:
    with zipfile.ZipFile(folder / archive, "w") as bundle:
        bundle.write(member, member.name)


@pytest.fixture()
def release_server(tmp_path: Path, shared_dir: Path) -> Iterator[tuple[str, Path]]:
    """Serve an official-layout v1 encoder and the real MTAT head from 127.0.0.1."""
    site = tmp_path / "site"
    site.mkdir()
    torch.manual_seed(0)
    encoder = SampleCNN(EncoderConfig())
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state["projector.0.weight"] = torch.randn(512, 512)
    state["projector.2.weight"] = torch.randn(128, 512)
    raw = tmp_path / "clmr_checkpoint_10000.pt"
    torch.save(state, raw)
    _zip(site, "clmr_checkpoint_10000.zip", raw)
    _zip(site, "finetuner_checkpoint_200.zip", shared_dir / "weights/finetuner_checkpoint_200.pt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()


@pytest.mark.slow  # a full-width export
def test_fetch_convert_and_reuse(
    tmp_path: Path, release_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, site = release_server
    monkeypatch.setenv("CLMR_EMBED_RELEASE_URL", url)
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    song = write_sine(tmp_path / "song.wav", 440, 6.0, 22050)
    first = runner.invoke(app, ["tag", str(song), "--model", "clmr-mtat", "--json"])
    assert first.exit_code == 0, first.output
    record = json.loads(first.stdout.strip().splitlines()[-1])
    assert record["model"] == "clmr-mtat" and len(record["tags"]) == 10
    assert (tmp_path / "cache" / "models" / "clmr-mtat.onnx").is_file()
    for archive in site.iterdir():  # offline from now on: the cache must serve it
        archive.unlink()
    again = runner.invoke(app, ["tag", str(song), "--model", "clmr-mtat", "--json"])
    assert again.exit_code == 0, again.output
    listing = runner.invoke(app, ["models", "--json"])
    rows = {json.loads(line)["name"]: json.loads(line) for line in listing.stdout.splitlines()}
    assert rows["clmr-mtat"]["available"] is True


@pytest.mark.slow  # a full-width export
def test_corrupt_head_download_is_refused(
    tmp_path: Path, release_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, site = release_server
    bad = tmp_path / "finetuner_checkpoint_200.pt"
    bad.write_bytes(b"not the official head")
    _zip(site, "finetuner_checkpoint_200.zip", bad)
    monkeypatch.setenv("CLMR_EMBED_RELEASE_URL", url)
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    song = write_sine(tmp_path / "song.wav", 440, 3.0, 22050)
    result = runner.invoke(app, ["tag", str(song), "--model", "clmr-mtat"])
    assert result.exit_code == 1
    assert "sha256" in result.output and "Traceback" not in result.output


def test_offline_error_says_how_to_use_local_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLMR_EMBED_RELEASE_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    song = write_sine(tmp_path / "song.wav", 440, 3.0, 22050)
    result = runner.invoke(app, ["tag", str(song), "--model", "clmr-mtat"])
    assert result.exit_code == 1
    assert "--model" in result.output

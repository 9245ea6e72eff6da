"""The runtime never imports torch: extract and tag run where `import torch` raises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clmr_embed.registry import DEFAULT_MODEL, MODELS, bundled_path
from tests.fixtures.no_torch import blocked_torch_env

HEAVY = ("torch", "onnxruntime", "numpy", "h5py", "av", "soundfile", "soxr", "training", "export")


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from clmr_embed.cli import app; "
        "from typer.testing import CliRunner; r = CliRunner().invoke(app, ['--help']); "
        "assert r.exit_code == 0, r.output; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _real_song(shared_dir: Path) -> Path:
    return shared_dir / "audio" / "clmr_demo" / "queen_love_of_my_life.mp3"  # really MP4/AAC


@pytest.mark.slow
def test_extract_and_tag_without_torch(tmp_path: Path, shared_dir: Path) -> None:
    env = blocked_torch_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert check.returncode != 0  # the block works
    song = _real_song(shared_dir)
    assert bundled_path(MODELS[DEFAULT_MODEL]).is_file()
    env.pop("CLMR_EMBED_MODEL", None)  # no --model: the bundled default, offline
    store = tmp_path / "out.h5"
    cli = [sys.executable, "-m", "clmr_embed"]
    extract = subprocess.run(
        [*cli, "extract", str(song), str(store), "--json", "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert extract.returncode == 0, extract.stderr
    summary = json.loads(extract.stdout.strip().splitlines()[-1])
    assert summary["embedded"] == 1 and summary["audio_seconds"] > 200
    assert summary["model"]["name"] == DEFAULT_MODEL
    tag = subprocess.run(
        [*cli, "tag", str(song), "--json", "--top-k", "5"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert tag.returncode == 0, tag.stderr
    record = json.loads(tag.stdout)
    assert len(record["tags"]) == 5 and record["n_windows"] > 70
    assert record["model"] == DEFAULT_MODEL and record["trained"]

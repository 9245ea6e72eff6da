"""Shared pre-training fixtures: real music excerpts with their teacher targets, built once."""

from pathlib import Path

import pytest
import soundfile as sf

from clmr_embed.audio import load_audio
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
WEIGHTS = SHARED / "weights"
DEMO = SHARED / "audio" / "clmr_demo"


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """Six 8-s excerpts of each demo song as tracks, their cache and 1-s-grid teacher targets
    (held-out excerpts then have siblings in training: a tiny run can generalise to them)."""
    pytest.importorskip("torch")
    from training.pretrain.cache import build_cache
    from training.pretrain.targets import GridSpec, TargetJob, build_targets

    if not (WEIGHTS / "musicnn_mtt.onnx").is_file():
        pytest.skip("needs ../shared/weights")
    folder = tmp_path_factory.mktemp("music")
    for song in sorted(DEMO.glob("*_22050.mp3")):
        audio, _ = load_audio(song, SAMPLE_RATE)
        for k in range(6):
            start = int((0.1 + 0.13 * k) * len(audio))
            excerpt = audio[start : start + 8 * SAMPLE_RATE]
            sf.write(folder / f"{song.stem}-{k}.wav", excerpt, SAMPLE_RATE)
    root = tmp_path_factory.mktemp("cache")
    cache, _ = build_cache([folder], SAMPLE_RATE, cache_root=root, progress=False)
    spec = GridSpec("max_pool", SAMPLE_RATE, WINDOW_SAMPLES)
    targets = build_targets(cache, TargetJob(spec, WEIGHTS, workers=1), progress=False)
    return folder, root, cache, targets

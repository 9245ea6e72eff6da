"""Distillation shards: packed under the size limit, read back by `train pretrain` as its data."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.constants import SAMPLE_RATE
from clmr_embed.errors import ConfigError, DataError
from tests.fixtures.pretrain import RECIPE, TINY, tiny_run
from training.pretrain.cache import build_cache
from training.pretrain.config import load_pretrain_config
from training.pretrain.run import run_pretrain
from training.pretrain.shards import SHARD_FILE, Z_SCALE, audio_folders, write_shards
from training.pretrain.targets import TeacherTargets

LIMIT = 200_000  # bytes: a few 8-s tracks (Opus ~24 kbps + 6 x 753 int8 targets) per shard


@pytest.fixture(scope="module")
def shards(demo_corpus, tmp_path_factory):
    _, _, cache, targets = demo_corpus
    return write_shards(targets, cache, tmp_path_factory.mktemp("shards") / "out", LIMIT)


def test_shards_hold_every_track_under_the_limit(demo_corpus, shards):
    _, _, cache, _ = demo_corpus
    assert len(shards) >= 2
    names = []
    for shard in shards:
        size = sum(f.stat().st_size for f in shard.rglob("*") if f.is_file())
        assert size <= LIMIT
        meta = json.loads((shard / SHARD_FILE).read_text())
        names += [t["source"] for t in meta["tracks"]]
    assert sorted(names) == sorted(cache.relpaths)
    with pytest.raises(DataError, match="already holds shards"):
        write_shards(demo_corpus[3], cache, shards[0].parent, LIMIT)


@pytest.mark.slow
def test_train_pretrain_reads_shards_with_their_targets(demo_corpus, shards, tmp_path):
    _, _, cache, targets = demo_corpus
    config = load_pretrain_config(
        RECIPE,
        tiny_run(
            batch_size=4,
            max_steps=3,
            warmup_steps=1,
            cache_dir=str(tmp_path / "cache"),
            teacher="/nowhere/on/the/gpu/box",
            validation_fraction=0.2,
            validate_every=3,
            checkpoint_every=3,
            log_every=1,
        ),  # fmt: skip
    )
    result = run_pretrain(config, shards, tmp_path / "run", progress=False)
    assert result.steps == 3
    unpacked, _ = build_cache(audio_folders(shards), SAMPLE_RATE, cache_root=tmp_path / "cache")
    assert len(unpacked) == len(cache)
    assert np.abs(unpacked.lengths - cache.lengths).max() < 0.01 * SAMPLE_RATE
    restored = TeacherTargets(unpacked, targets.spec)
    assert restored.coverage == 1
    # the same track's standardised targets, back through the shard
    errors = []
    source = {rel.rsplit("/", 1)[-1]: t for t, rel in enumerate(cache.relpaths)}
    for shard in shards:
        meta = json.loads((shard / SHARD_FILE).read_text())
        for entry in meta["tracks"]:
            original = source[entry["source"].rsplit("/", 1)[-1]]
            track = next(
                t
                for t, rel in enumerate(unpacked.relpaths)
                if rel.endswith(shard.name + "/audio/" + entry["name"])
            )
            grid = np.arange(entry["crops"]) * targets.spec.hop
            want, _ = targets.lookup(np.full(len(grid), original), grid)
            got, _ = restored.lookup(np.full(len(grid), track), grid)
            errors.append(np.abs(got - want).ravel())
    # int8 steps of 1/31.75 sigma, clipped at +-4 sigma, then float16 and re-standardised
    error = np.concatenate(errors)
    assert error.mean() < 1 / Z_SCALE and np.quantile(error, 0.99) < 4 / Z_SCALE


def test_shards_must_match_the_grid_asked_for(shards, tmp_path):
    config = load_pretrain_config(
        RECIPE,
        dict(
            encoder_channels=TINY,
            teacher_hop_seconds=2.0,
            device="cpu",
            cache_dir=str(tmp_path / "cache"),
        ),  # fmt: skip
    )
    with pytest.raises(ConfigError, match="1-s grid"):
        run_pretrain(config, shards, tmp_path / "run", progress=False)

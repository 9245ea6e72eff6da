"""`extract --ray` on a local 2-CPU Ray: the store of a plain extract, failures kept per file."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import ConfigError
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.extract.cluster import ClusterConfig, run_extract_ray, shard_folder
from clmr_embed.store import check_store, open_store

ray = pytest.importorskip("ray")  # the `ray` extra (dev installs it)

GENRES = ("blues", "jazz", "metal")  # two 30-s GTZAN clips of each
ACTORS = 2  # one engine session each, on the 2 local CPUs beside the decode tasks


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray of 2 CPUs for the module (a run joins it and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture()
def library(tmp_path: Path, shared_dir: Path) -> Path:
    """Six real GTZAN clips in genre folders, and one corrupt file."""
    clips = shared_dir / "audio" / "gtzan_subset" / "audio"
    for genre in GENRES:
        (tmp_path / "lib" / genre).mkdir(parents=True)
        for clip in sorted((clips / genre).iterdir())[:2]:
            shutil.copy(clip, tmp_path / "lib" / genre / clip.name)
    (tmp_path / "lib" / "broken.mp3").write_bytes(b"\x00not audio" * 50)
    return tmp_path / "lib"


def tracks(path: Path) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    with open_store(path) as store:
        return {p: (store.flags(p), store.embeddings(p)) for p in store.paths}


def assert_same_store(got: Path, want: Path) -> None:
    a, b = tracks(got), tracks(want)
    assert a.keys() == b.keys()
    for path, (flags, embeddings) in b.items():
        assert a[path][0] == flags
        np.testing.assert_allclose(a[path][1], embeddings, atol=1e-5)
    with open_store(got) as g, open_store(want) as w:
        assert g.errors.keys() == w.errors.keys()
    assert not check_store(got).damaged


def test_a_ray_run_makes_the_store_of_a_plain_extract(
    local_ray: None, library: Path, tmp_path: Path
) -> None:
    plain, out = tmp_path / "plain.h5", tmp_path / "ray.h5"
    assert run_extract(ExtractConfig(inputs=(library,), output=plain)).exit_code == 1
    summary = run_extract_ray(
        ExtractConfig(inputs=(library,), output=out), ClusterConfig(actors=ACTORS)
    )
    assert (summary.embedded, len(summary.failed), summary.exit_code) == (6, 1, 1)
    assert "broken.mp3" in summary.failed[0].path
    assert_same_store(out, plain)
    assert not shard_folder(out).exists()  # merged, then removed
    with open_store(out) as store:
        assert len(store.shards) == ACTORS and store.roots[0].folder == library
    again = run_extract_ray(ExtractConfig(inputs=(library,), output=out), ClusterConfig())
    assert (again.embedded, again.unchanged) == (0, 6)


def _embedder_pids() -> list[int]:
    """Processes of the Ray actors that embed (Ray names them ray::EmbeddingActor)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ray::EmbeddingActor" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


class KillAnActor:
    """Progress that SIGKILLs one embedding actor as soon as the first track is done."""

    def __init__(self) -> None:
        self.killed: list[int] = []

    def start(self, total_files: int) -> None:
        pass

    def advance(self, relpath: str, duration_s: float) -> None:
        if not self.killed and (pids := _embedder_pids()):
            os.kill(pids[0], signal.SIGKILL)
            self.killed.append(pids[0])


def test_a_killed_actor_loses_no_track(local_ray: None, library: Path, tmp_path: Path) -> None:
    plain, out = tmp_path / "plain.h5", tmp_path / "ray.h5"
    run_extract(ExtractConfig(inputs=(library,), output=plain))
    progress = KillAnActor()
    config = ExtractConfig(inputs=(library,), output=out)
    first = run_extract_ray(config, ClusterConfig(actors=ACTORS), progress=progress)
    assert progress.killed, "no actor was running to kill"
    rerun = run_extract_ray(config, ClusterConfig(actors=ACTORS))
    # Ray restarts the actor and retries its file; a file it gave up on is embedded by the rerun
    assert first.embedded + rerun.embedded == 6 and rerun.unchanged == first.embedded
    assert_same_store(out, plain)


def test_a_killed_runs_shards_are_merged_before_planning(
    local_ray: None, library: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray.h5"
    shard_folder(out).mkdir()
    left = shard_folder(out) / "shard-000.h5"  # as a killed run's actor left it
    run_extract(ExtractConfig(inputs=(library,), output=left, include=("jazz/*",)))
    summary = run_extract_ray(ExtractConfig(inputs=(library,), output=out), ClusterConfig())
    assert (summary.unchanged, summary.embedded) == (2, 4)
    assert len(tracks(out)) == 6 and not shard_folder(out).exists()


def test_a_cluster_too_small_for_its_actors_is_refused(
    local_ray: None, library: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="too few for 2 embedding actors"):
        run_extract_ray(
            ExtractConfig(inputs=(library,), output=tmp_path / "out.h5"),
            ClusterConfig(actors=2, decode_cpus=2.0),
        )
    with pytest.raises(ConfigError, match="ray actors must be >= 0"):
        ClusterConfig(actors=-1)

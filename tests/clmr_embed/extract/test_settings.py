"""The engine settings an extract run chooses are applied, and change no stored number."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clmr_embed.digest import ModelFile
from clmr_embed.engines import Engine, open_engine
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.extract import run as run_module
from clmr_embed.store import open_store
from tests.fixtures.audio import write_library


def _extract(lib: Path, out: Path, model: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> bool:
    """Run extract; whether the onnxruntime session it opened spins."""
    opened: list[Engine] = []
    real = open_engine  # what run.py calls (patched there below)

    def spy(model: ModelFile, config: Any = None) -> Engine:
        opened.append(real(model, config))
        return opened[-1]

    monkeypatch.setattr(run_module, "open_engine", spy)
    summary = run_extract(ExtractConfig(inputs=(lib,), output=out, model=str(model), **kw))
    assert summary.exit_code == 0 and len(opened) == 1
    return bool(opened[0].model.spins)  # type: ignore[attr-defined]


def test_spinning_is_off_while_decode_workers_share_the_cores(
    tmp_path: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = write_library(tmp_path / "lib")
    runs: dict[str, tuple[dict[str, Any], bool]] = {
        "workers 1": ({"workers": 1}, False),
        "workers auto": ({"workers": None}, False),
        "workers 2, threads 1": ({"workers": 2, "threads": 1}, False),
        "in-process decoding": ({"workers": 0}, True),
        "workers 1, spin forced on": ({"workers": 1, "spin": True}, True),
    }
    stores: dict[str, Any] = {}
    for name, (settings, spinning) in runs.items():
        out = tmp_path / f"{len(stores)}.h5"
        assert _extract(lib, out, tiny_tagger, monkeypatch, **settings) is spinning
        stores[name] = out
    with open_store(stores["workers 1"]) as first:
        paths = sorted(first.paths)
        want = {p: first.embeddings(p) for p in paths}
    for out in stores.values():
        with open_store(out) as other:
            assert sorted(other.paths) == paths
            for p in paths:
                np.testing.assert_array_equal(other.embeddings(p), want[p])


def test_auto_workers_start_one_per_core_at_most_one_per_file_and_the_summary_says_so(
    tmp_path: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    lib = write_library(tmp_path / "lib")  # five audio files
    for cores, started in ((2, 2), (64, 5)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _, n=cores: set(range(n)))
        config = ExtractConfig(
            inputs=(lib,), output=tmp_path / f"{cores}.h5", model=str(tiny_tagger)
        )
        summary = run_extract(config)
        assert (summary.workers, summary.workers_auto) == (started, True)
        assert summary.to_dict()["workers"] == {"decode": started, "auto": True}
    given = ExtractConfig(
        inputs=(lib,), output=tmp_path / "1.h5", model=str(tiny_tagger), workers=1
    )
    assert (run_extract(given).workers, run_extract(given).workers_auto) == (1, False)


def test_workers_started_before_the_model_are_stopped_when_it_fails(tmp_path: Path) -> None:
    import multiprocessing

    from clmr_embed.errors import ModelArtifactError

    lib = write_library(tmp_path / "lib")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    config = ExtractConfig(inputs=(lib,), output=tmp_path / "o.h5", model=str(bad), workers=2)
    with pytest.raises(ModelArtifactError):
        run_extract(config)
    assert multiprocessing.active_children() == []

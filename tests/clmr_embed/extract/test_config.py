"""ExtractConfig limits: a batch that would not fit in memory is refused before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clmr_embed.errors import ConfigError
from clmr_embed.extract import config as config_module
from clmr_embed.extract.config import (
    WORKER_BYTES,
    ExtractConfig,
    auto_workers,
    available_memory,
    check_batch_memory,
)

GB = 10**9


def test_a_batch_that_fits_passes_and_one_that_does_not_names_the_limit() -> None:
    check_batch_memory(16, 59049, 16 * GB)  # SampleCNN's default batch on a 16 GB machine
    with pytest.raises(ConfigError) as caught:
        check_batch_memory(4096, 59049, 16 * GB)  # ~97 GB: the OS would kill the run
    message = str(caught.value)
    assert "4096" in message and "at most 338 fit" in message and "16.0 GB" in message
    assert "--" not in message  # the library never names CLI flags


def test_the_limit_scales_with_the_window_and_is_never_below_one() -> None:
    check_batch_memory(338, 59049, 16 * GB)
    with pytest.raises(ConfigError):
        check_batch_memory(339, 59049, 16 * GB)
    check_batch_memory(1, 59049, 1)  # one window always runs: nothing smaller to suggest
    check_batch_memory(10**9, 59049, None)  # memory unknown: not refused


def test_available_memory_is_a_plausible_byte_count() -> None:
    available = available_memory()
    assert available is None or 0 < available < 2**50


def test_auto_workers_are_one_per_usable_core_as_memory_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2})
    assert auto_workers(None) == 3
    assert auto_workers(100 * WORKER_BYTES) == 3
    assert auto_workers(8 * WORKER_BYTES) == 2  # a quarter of the memory holds two
    assert auto_workers(0) == 1  # never none: decoding must run somewhere


def test_auto_is_resolved_once_and_turns_spinning_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    monkeypatch.setattr(config_module, "available_memory", lambda: None)
    auto = ExtractConfig(inputs=(), output=Path("o.h5"))
    assert (auto.workers, auto.decode_workers, auto.engine_config.spin) == (None, 2, False)
    given = ExtractConfig(inputs=(), output=Path("o.h5"), workers=0)
    assert (given.decode_workers, given.engine_config.spin) == (0, True)

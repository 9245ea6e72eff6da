"""ExtractConfig limits: a batch that would not fit in memory is refused before any work."""

from __future__ import annotations

import pytest

from clmr_embed.errors import ConfigError
from clmr_embed.extract.config import available_memory, check_batch_memory

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

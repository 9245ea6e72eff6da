"""Tests of clmr_embed.store.lock: one writer at a time, in this process or another."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.errors import StoreError
from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import HEADER, run_child


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER):
        with pytest.raises(StoreError, match="another clmr-embed extract") as info:
            open_writer(out, HEADER)
        assert str(out) in str(info.value)
        child = run_child(f"open_writer(Path({str(out)!r}), HEADER)")
        assert child.returncode != 0 and "another clmr-embed extract" in child.stderr
        with open_store(out) as store:  # readers need no lock
            assert len(store) == 0
    open_writer(out, HEADER).close()  # released on exit

"""BatchRunner: windows of many files packed into full batches, tracks journaled in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clmr_embed.audio import DecodedFile
from clmr_embed.extract import ExtractConfig
from clmr_embed.extract.batches import BatchRunner
from clmr_embed.extract.messages import Decoded, Failed, Message, Windows
from clmr_embed.extract.plan import PlannedTrack, track_id_for
from clmr_embed.scan import AudioFile
from clmr_embed.store import StoreHeader, open_store, open_writer

WINDOW = 4
HEADER = StoreHeader("fake", "f" * 64, True, 1000, WINDOW, WINDOW, WINDOW, {"decoder": "test"})


@dataclass
class _Info:
    sample_rate: int = 1000


@dataclass
class FakeModel:
    """Embeds a window as itself and records every batch size it was given."""

    info: _Info = field(default_factory=_Info)
    batches: list[int] = field(default_factory=list)

    def run(self, windows: np.ndarray) -> tuple[np.ndarray, None]:
        self.batches.append(len(windows))
        return windows.copy(), None


def _planned(name: str) -> PlannedTrack:
    file = AudioFile(Path("/lib") / name, Path("/lib"), name)
    return PlannedTrack(file, track_id_for(name), "sha-" + name)


def _windows(job: int, first: int, n: int, at: int = 0) -> Windows:
    """n windows valued first.. (so their order is checkable), the file's windows at.. ."""
    values = np.arange(first, first + n, dtype=np.float32)
    starts = np.arange(at, at + n) * WINDOW
    return Windows(job, np.repeat(values[:, None], WINDOW, axis=1), starts)


def _decoded(n_windows: int) -> DecodedFile:
    return DecodedFile(n_windows * WINDOW / 1000, 44100, 2, padded=False, silent=False)


def test_windows_of_many_files_fill_full_batches(tmp_path: Path) -> None:
    todo = [_planned("a.wav"), _planned("b.wav"), _planned("c.wav")]
    # interleaved chunks, as worker processes deliver them
    messages: list[Message | None] = [
        _windows(0, 0, 3),
        _windows(1, 100, 2),
        _windows(0, 3, 4, at=3),
        None,
        _windows(2, 200, 5),
        Decoded(0, _decoded(7)),
        _windows(1, 102, 1, at=2),
        Decoded(1, _decoded(3)),
        Decoded(2, _decoded(5)),
    ]
    model = FakeModel()
    config = ExtractConfig(inputs=(), output=tmp_path / "out.h5", batch_size=4, workers=2)
    with open_writer(config.output, HEADER) as store:
        outcome = BatchRunner(model, store, config).run(todo, messages)  # type: ignore[arg-type]
    assert sum(model.batches) == 15 and model.batches[:3] == [4, 4, 4]
    assert [t.relpath for t in outcome.embedded] == ["a.wav", "b.wav", "c.wav"]
    assert outcome.failed == []
    with open_store(config.output) as stored:
        for name, first, n in (("a.wav", 0, 7), ("b.wav", 100, 3), ("c.wav", 200, 5)):
            np.testing.assert_array_equal(stored.embeddings(name)[:, 0], np.arange(n) + first)
            np.testing.assert_allclose(stored.starts_s(name), np.arange(n) * WINDOW / 1000)


def test_a_failed_file_drops_its_queued_windows(tmp_path: Path) -> None:
    todo = [_planned("good.wav"), _planned("bad.wav")]
    messages: list[Message | None] = [
        _windows(1, 50, 3),  # queued, then its file fails
        Failed(1, "bad.wav: broken"),
        _windows(0, 0, 2),
        Decoded(0, _decoded(2)),
    ]
    model = FakeModel()
    config = ExtractConfig(inputs=(), output=tmp_path / "out.h5", batch_size=4, workers=0)
    with open_writer(config.output, HEADER) as store:
        outcome = BatchRunner(model, store, config).run(todo, messages)  # type: ignore[arg-type]
    assert model.batches == [2]  # bad.wav's windows never reached the model
    assert [(f.path, f.reason) for f in outcome.failed] == [("bad.wav", "bad.wav: broken")]
    with open_store(config.output) as stored:
        assert stored.paths == ["good.wav"] and stored.errors == {"bad.wav": "bad.wav: broken"}

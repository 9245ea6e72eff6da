"""training.pretrain.targets: the grid, cached targets equal the teacher run directly, resume."""

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.audio import load_audio, resample
from clmr_embed.errors import DataError
from training.pretrain.cache import build_cache, pcm_to_float
from training.pretrain.targets import GridSpec, TargetJob, TeacherTargets, build_targets
from training.pretrain.teacher import HOP, PATCH_FRAMES, TEACHER_RATE, Teacher

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEIGHTS = SHARED / "weights"
SONG = SHARED / "audio" / "clmr_demo" / "queen_love_of_my_life.mp3"
RATE, WINDOW, GRID = 22050, 59049, 22050
needs_teacher = pytest.mark.skipif(
    not (WEIGHTS / "musicnn_mtt.onnx").is_file() or not SONG.is_file(),
    reason="needs ../shared teacher weights and demo audio",
)


def test_grid_counts_every_start_where_a_window_fits():
    spec = GridSpec("max_pool", hop=10, window=25)
    # 24: no window; 25: start 0; 34: still 0; 35: 0 and 10; 100: 0..70
    assert spec.counts(np.array([24, 25, 34, 35, 100])).tolist() == [0, 1, 1, 2, 8]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    """A two-track cache cut from a real song (9 s and 5 s), and its target cache."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("corpus")
    audio, _ = load_audio(SONG, RATE)
    sf.write(folder / "a.wav", audio[30 * RATE : 39 * RATE], RATE, subtype="PCM_16")
    sf.write(folder / "b.wav", audio[60 * RATE : 65 * RATE], RATE, subtype="PCM_16")
    cache, _ = build_cache([folder], RATE, cache_root=folder / "cache", progress=False)
    job = TargetJob(GridSpec("max_pool", GRID, WINDOW), WEIGHTS, workers=1)
    return cache, build_targets(cache, job, progress=False)


def _direct(teacher: Teacher, pcm: np.ndarray, start: int) -> np.ndarray:
    """The teacher on the 2.992-s patch centred on the crop, from just the audio it sees."""
    audio = resample(pcm_to_float(pcm), RATE, TEACHER_RATE)
    centre_frame = round((start + WINDOW / 2) / RATE * TEACHER_RATE / HOP)
    n_frames = 1 + len(audio) // HOP
    first = min(max(centre_frame - PATCH_FRAMES // 2, 0), n_frames - PATCH_FRAMES)
    lo = first * HOP - HOP  # one hop of left context: frame `first` sees its real samples
    segment = audio[max(lo, 0) : (first + PATCH_FRAMES) * HOP + HOP]
    frames = teacher.logmel(segment)[1 if lo >= 0 else 0 :][:PATCH_FRAMES]
    return teacher.run(frames[None], "max_pool")[0]


@needs_teacher
def test_cached_targets_equal_the_teacher_run_directly(corpus):
    cache, targets = corpus
    assert targets.offsets.tolist() == [0, 7, 10]  # 9 s -> starts 0..6 s; 5 s -> 0..2 s
    teacher = Teacher(WEIGHTS, threads=1)
    for track, grid in [(0, 0), (0, 3), (0, 6), (1, 0), (1, 2)]:
        start = grid * GRID
        want = _direct(teacher, np.asarray(cache.track(track)), start)
        rows, mask = targets.lookup(np.array([track]), np.array([start]))
        assert mask.all()
        got = rows[0] * targets.std + targets.mean
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-2)  # float16 storage


@needs_teacher
def test_targets_are_standardised_and_reused(corpus):
    cache, targets = corpus
    all_rows, _ = targets.lookup(
        np.array([0] * 7 + [1] * 3), np.array([*range(7), *range(3)]) * GRID
    )
    live = targets.std > 1e-3
    np.testing.assert_allclose(all_rows.mean(0)[live], 0, atol=1e-2)
    np.testing.assert_allclose(all_rows.std(0)[live], 1, atol=1e-2)
    again = build_targets(cache, TargetJob(targets.spec, WEIGHTS), progress=False)
    assert isinstance(again, TeacherTargets) and again.folder == targets.folder
    assert again.coverage == 1.0


@needs_teacher
def test_off_grid_or_out_of_range_starts_are_refused(corpus):
    _, targets = corpus
    with pytest.raises(DataError, match="not on the teacher grid"):
        targets.lookup(np.array([0]), np.array([GRID + 1]))
    with pytest.raises(DataError, match="not on the teacher grid"):
        targets.lookup(np.array([1]), np.array([3 * GRID]))  # track 1 has 3 grid crops


@needs_teacher
def test_a_killed_build_resumes_and_a_partial_one_masks(corpus):
    cache, targets = corpus
    parts = targets.folder / "tracks"
    kept = (parts / "000000.npy").stat().st_mtime_ns
    (parts / "000001.npy").unlink()  # as if killed before track 1 was done
    partial = TeacherTargets(cache, targets.spec)
    assert partial.available.tolist() == [True, False] and partial.coverage == 0.7
    rows, mask = partial.lookup(np.array([0, 1]), np.array([0, 0]))
    assert mask.tolist() == [True, False] and not rows[1].any()
    rebuilt = build_targets(cache, TargetJob(targets.spec, WEIGHTS), progress=False)
    assert (parts / "000000.npy").stat().st_mtime_ns == kept  # not recomputed
    assert rebuilt.available.all() and rebuilt.offsets.tolist() == [0, 7, 10]

"""tools.teacher_probe: one teacher feature per window, from the patch centred on it."""

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from tests.fixtures.audio import write_sine
from tools.teacher_probe import teacher_features
from training.pretrain.teacher import Teacher

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights"
needs_teacher = pytest.mark.skipif(
    not (WEIGHTS / "musicnn_mtt.onnx").is_file(), reason="no ../shared/weights teacher files"
)


@needs_teacher
def test_each_window_gets_the_teacher_output_of_its_own_patch(tmp_path: Path) -> None:
    seconds = 3 * WINDOW_SAMPLES / SAMPLE_RATE + 0.5  # three windows and a dropped tail
    low = write_sine(tmp_path / "low.wav", 110, seconds, SAMPLE_RATE)
    high = write_sine(tmp_path / "high.wav", 3520, seconds, SAMPLE_RATE)
    teacher = Teacher(WEIGHTS, threads=1)
    features = teacher_features(teacher, [low, high], "max_pool")
    assert [w.shape for w in features.windows] == [(3, 753), (3, 753)]
    low_f, high_f = features.windows
    assert np.isfinite(low_f).all()
    # a steady tone looks alike in each window; two tones do not look alike
    assert np.abs(low_f - low_f[0]).max() < np.abs(low_f.mean(0) - high_f.mean(0)).max()

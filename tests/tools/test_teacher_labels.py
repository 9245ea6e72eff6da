"""tools.teacher_labels: musicnn ONNX parity, our decode path, the soft manifest, window targets."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clmr_embed.constants import MTAT_TAGS
from clmr_embed.errors import ConfigError, ModelArtifactError
from tools import teacher_labels as tl
from training.linear.labels import read_labels
from training.pretrain import teacher as teacher_module

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WEIGHTS = SHARED / "weights"
DEMO = SHARED / "audio" / "clmr_demo"
ONNX_SHA256 = "96ccebb8c9441b400658c7c4d23c5570c5e2d80264d907578eb78a3d4f3ddacc"  # SOURCES.md
needs_teacher = pytest.mark.skipif(
    not (WEIGHTS / "musicnn_mtt.onnx").is_file(), reason="no /work/shared/weights teacher files"
)


@pytest.fixture(scope="module")
def teacher() -> tl.Teacher:
    return tl.Teacher(WEIGHTS, threads=1)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS / "musicnn_mtt_reference.npz") as ref:
        return {k: ref[k] for k in ref.files}


@pytest.mark.slow  # runs the teacher on a reference song
@needs_teacher
def test_reference_patches_and_taggram(teacher, reference, monkeypatch):
    monkeypatch.setattr(
        teacher_module, "PATCHES_PER_RUN", 3
    )  # several runs: the segment seams are exercised
    for k in range(2):
        audio = reference["audio_16k"][k]
        # Patches 3..6 from their own audio segment equal musicnn's to float32 rounding (bit for
        # bit on some CPUs; CI's differed by 1.6e-7 relative: another SIMD path in the FFT/mel).
        patches = teacher._patches(audio, 3, 7)
        np.testing.assert_allclose(patches, reference["patches"][k][3:7], rtol=1e-6, atol=1e-6)
        taggram = teacher.taggram(audio)
        assert taggram.shape == (10, 50) and taggram.dtype == np.float32
        np.testing.assert_allclose(taggram, reference["taggram"][k], rtol=0, atol=1e-4)


@pytest.mark.slow  # decodes and tags whole songs
@needs_teacher
def test_decode_path_gives_musicnn_track_tags(teacher, reference):
    song = str(reference["songs"][0])
    audio = tl.load_audio_16k(DEMO / song)
    assert len(audio) == 2952770  # ceil(4069285 * 16000 / 22050), librosa.load's length
    taggram = teacher.taggram(audio)
    assert len(taggram) == reference["n_patches_track"][0]
    np.testing.assert_allclose(taggram.mean(axis=0), reference["track_tags"][0], atol=1e-4)


def _write_tone(path: Path, seconds: float, freq: float, seed: int) -> Path:
    rate = 22050
    t = np.arange(round(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.05 * noise
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave, 0.5 * wave], axis=1).astype(np.float32), rate)
    return path


@needs_teacher
def test_manifest_reads_back_as_soft_targets(tmp_path, teacher, capsys):
    data = tmp_path / "data"
    a1 = _write_tone(data / "albumA" / "a1.wav", 6.5, 220.0, 0)
    _write_tone(data / "albumA" / "a2.wav", 4.0, 880.0, 1)
    _write_tone(data / "albumB" / "b1.wav", 3.5, 440.0, 2)
    _write_tone(data / "albumB" / "short.wav", 2.0, 440.0, 3)
    sf.write(data / "albumB" / "silence.wav", np.zeros(5 * 22050, np.float32), 22050)
    out = data / "labels.csv"
    argv = [str(data), "--weights", str(WEIGHTS), "--out", str(out), "--holdout-fraction", "0.3"]
    assert tl.main([*argv, "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "skipped albumB/short.wav: shorter than one" in err
    assert "skipped albumB/silence.wav: silent" in err  # musicnn tags digital silence confidently

    labels = read_labels(data)  # found as <folder>/labels.csv
    assert labels.task == "soft" and labels.labels == MTAT_TAGS
    assert labels.relpaths == ("albumA/a1.wav", "albumA/a2.wav", "albumB/b1.wav")
    assert labels.groups == ("albumA", "albumA", "albumB")
    # Target 0.3 * 3 files: albumB (1 file) is held out whatever the shuffle order.
    assert labels.splits == ("train", "train", "test") and labels.has_given_split
    assert ((labels.targets >= 0) & (labels.targets <= 1)).all()
    expected = teacher.taggram(tl.load_audio_16k(a1))
    assert len(expected) == 2  # 6.5 s holds two whole 2.992-s patches
    np.testing.assert_allclose(labels.targets[0], expected.mean(axis=0), atol=1e-6)

    info = json.loads(Path(f"{out}.json").read_text())
    assert info["teacher"]["sha256"]["musicnn_mtt.onnx"] == ONNX_SHA256
    assert info["teacher"]["licence"].startswith("ISC")
    assert info["counts"] == {"files": 3, "patches": 4, "skipped": 2}
    assert info["split"]["test"] == {"files": 1, "groups": 1}
    assert [s["path"] for s in info["skipped"]] == ["albumB/short.wav", "albumB/silence.wav"]


@needs_teacher
def test_several_folder_inputs_keep_paths_relative_to_the_manifest(tmp_path):
    for album in ("albumA", "albumB"):
        _write_tone(tmp_path / album / "x.wav", 3.5, 330.0, 0)
    out = tmp_path / "labels.csv"
    argv = [str(tmp_path / "albumA"), str(tmp_path / "albumB"), "--weights", str(WEIGHTS)]
    assert tl.main([*argv, "--out", str(out), "--threads", "1"]) == 0
    labels = read_labels(out)
    assert labels.relpaths == ("albumA/x.wav", "albumB/x.wav")  # not albumA/albumA/x.wav
    assert labels.groups == ("albumA", "albumB")


@needs_teacher
def test_inputs_outside_the_manifest_folder_are_refused(tmp_path, capsys):
    _write_tone(tmp_path / "music" / "x.wav", 3.5, 330.0, 0)
    (tmp_path / "elsewhere").mkdir()
    argv = [str(tmp_path / "music"), "--weights", str(WEIGHTS), "--threads", "1"]
    assert tl.main([*argv, "--out", str(tmp_path / "elsewhere" / "labels.csv")]) == 1
    assert "is outside" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere" / "labels.csv").exists()


def test_missing_weights_folder_is_one_error(tmp_path):
    with pytest.raises(ModelArtifactError, match="musicnn_mtt.onnx"):
        tl.Teacher(tmp_path)


def test_window_targets_average_the_overlapping_patches():
    taggram = np.stack([np.full(4, float(i)) for i in range(3)])  # patch i scores i on every tag
    starts = [0.0, 2.0, 3.0, 3.5, 5.5, 7.0, 9.5]
    got = tl.window_targets(taggram, starts, window_seconds=2.5, patch_seconds=3.0)
    # [0,2.5): p0; [2,4.5): p0,p1; [3,5.5): p1 (touching p0 only); [3.5,6): p1 (touching p2);
    # [5.5,8): p1,p2; [7,9.5): p2 (past the last patch, clipped); [9.5,12): no patch.
    want = [0.0, 0.5, 1.0, 1.0, 1.5, 2.0]
    np.testing.assert_allclose(got[:6], np.repeat(np.array(want)[:, None], 4, axis=1))
    assert np.isnan(got[6]).all() and got.dtype == np.float32
    # 0.3 / 0.1 and 0.4 / 0.1 are not whole in floating point; touching patches 2 and 4 still
    # do not count.
    fine = np.arange(5, dtype=np.float32)[:, None]
    np.testing.assert_allclose(tl.window_targets(fine, [0.3], 0.1, patch_seconds=0.1), [[3.0]])
    long = tl.window_targets(taggram, [0.5], window_seconds=10.0, patch_seconds=3.0)
    np.testing.assert_allclose(long, [[1.0] * 4])  # spans all three patches
    assert pytest.approx(187 * 256 / 16000) == tl.PATCH_SECONDS
    with pytest.raises(ConfigError):
        tl.window_targets(taggram[0], starts, window_seconds=2.5)


def test_assign_splits_holds_out_whole_groups_by_seed():
    groups = [f"album{i // 3}" for i in range(30)]  # 10 albums of 3 files
    split = tl.assign_splits(groups, 0.2, seed=0)
    assert sum(v == "test" for v in split.values()) == 2  # 6 of 30 files
    assert split == tl.assign_splits(groups, 0.2, seed=0)
    assert split != tl.assign_splits(groups, 0.2, seed=1)
    assert set(tl.assign_splits(groups, 0.0, seed=0).values()) == {"train"}
    assert tl.assign_splits(["one"] * 5, 0.5, seed=0) == {"one": "train"}  # nothing left to train
    assert sorted(tl.assign_splits(["a", "b"], 0.01, seed=0).values()) == ["test", "train"]
    with pytest.raises(ConfigError):
        tl.assign_splits(groups, 1.0, seed=0)

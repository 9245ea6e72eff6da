"""Linear evaluation end to end on synthetic features: training, clip-level pooling, checkpoint."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import DataError  # noqa: E402
from training.labels import LabelledSet  # noqa: E402
from training.linear_eval import (  # noqa: E402
    Features,
    LinearEvalConfig,
    fit_head,
    predict_clips,
    run_linear_eval,
)
from training.samplecnn import TaggerHead  # noqa: E402
from training.splits import Fold  # noqa: E402

DIM = 16


def _dataset(task: str, n_items: int = 60, n_labels: int = 3, seed: int = 0, spread: float = 4.0):
    """Items whose windows scatter around a per-class mean (far apart when spread is large)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_labels, DIM)) * spread
    if task == "multiclass":
        cls = np.arange(n_items) % n_labels
        targets = np.eye(n_labels, dtype=np.float32)[cls]
    else:
        targets = (rng.random((n_items, n_labels)) < 0.5).astype(np.float32)
        targets[np.arange(n_items), np.arange(n_items) % n_labels] = 1.0  # both classes per label
    windows = []
    for t in targets:
        n_windows = int(rng.integers(1, 5))
        centre = (t @ means) / max(t.sum(), 1.0)
        windows.append((centre + rng.normal(size=(n_windows, DIM))).astype(np.float32))
    data = LabelledSet(
        root=Path("/data"),
        paths=tuple(Path(f"/data/item{i}.wav") for i in range(n_items)),
        labels=tuple(f"l{j}" for j in range(n_labels)),
        targets=targets,
        task=task,
        groups=tuple(f"track{i // 2}" for i in range(n_items)),  # two clips per track
        splits=(None,) * n_items,
    )
    return Features(tuple(windows)), data


FAST = LinearEvalConfig(max_epochs=60, patience=5, batch_size=32, lr=1e-2, folds=3)


def test_separable_multiclass_reaches_high_accuracy_and_exports_a_head():
    features, data = _dataset("multiclass")
    result = run_linear_eval(features, data, FAST)
    assert len(result.folds) == 3
    mean_acc, std_acc = result.summary["accuracy"]
    assert mean_acc >= 0.95 and std_acc >= 0.0
    assert result.summary["tag_roc_auc"][0] >= 0.97
    ckpt = result.checkpoint
    assert ckpt.labels == ["l0", "l1", "l2"]
    assert ckpt.head_config.task == "multiclass" and ckpt.head_config.hidden_dim == 0
    head = TaggerHead(ckpt.head_config)
    head.load_state_dict(ckpt.head_state)  # strict: the keys TaggerHead expects
    sizes = result.folds[0].sizes
    assert sizes["train"] + sizes["valid"] + sizes["test"] == len(data)


def test_multilabel_mlp_and_standardised_features_learn():
    features, data = _dataset("multilabel", spread=3.0)
    config = LinearEvalConfig(
        max_epochs=60,
        patience=5,
        batch_size=32,
        lr=1e-2,
        folds=3,
        mlp=True,
        hidden_dim=32,
        standardise=True,
    )
    result = run_linear_eval(features, data, config)
    assert result.summary["tag_roc_auc"][0] > 0.9
    assert "accuracy" not in result.summary
    assert result.checkpoint.head_config.hidden_dim == 32
    assert set(result.checkpoint.head_state) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_random_features_score_near_chance():
    features, data = _dataset("multiclass", spread=0.0, n_items=90)
    result = run_linear_eval(features, data, FAST)
    assert result.summary["accuracy"][0] < 0.6  # 3 classes: chance is 1/3


def test_standardisation_is_folded_into_the_head():
    features, data = _dataset("multiclass")
    shifted = Features(tuple(w * 50.0 + 100.0 for w in features.windows))
    fold = Fold("t", np.arange(40), np.arange(40, 50), np.arange(50, 60), 1.0)
    config = LinearEvalConfig(max_epochs=20, patience=20, batch_size=32, lr=1e-2, standardise=True)
    head, _ = fit_head(shifted, data, fold, config)
    probs = predict_clips(head, shifted, fold.test, "multiclass")  # raw (unstandardised) input
    assert (probs.argmax(1) == data.targets[fold.test].argmax(1)).mean() >= 0.9


def test_clip_scores_average_window_probabilities_not_logits():
    head = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        head[0].weight.copy_(torch.eye(2))
        head[0].bias.zero_()
    windows = np.array([[4.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    features = Features((windows, windows[:1]))
    soft = predict_clips(head, features, np.array([0, 1]), "multiclass")
    window_soft = torch.tensor(windows).double().softmax(-1).numpy()
    np.testing.assert_allclose(soft[0], window_soft.mean(0))
    np.testing.assert_allclose(soft.sum(1), 1.0)
    sig = predict_clips(head, features, np.array([0, 1]), "multilabel")
    np.testing.assert_allclose(sig[0], (1 / (1 + np.exp(-windows.astype(float)))).mean(0))
    assert sig[1, 0] > 0.98 and not np.allclose(sig.sum(1), 1.0)


def test_seeded_runs_are_identical_and_seeds_differ():
    features, data = _dataset("multilabel", n_items=40, spread=1.0)
    config = LinearEvalConfig(max_epochs=5, patience=5, batch_size=16, folds=2, seed=1)
    a = run_linear_eval(features, data, config)
    b = run_linear_eval(features, data, config)
    c = run_linear_eval(
        features, data, LinearEvalConfig(max_epochs=5, patience=5, batch_size=16, folds=2, seed=2)
    )
    assert a.summary == b.summary
    assert a.summary != c.summary
    torch.testing.assert_close(a.checkpoint.head_state, b.checkpoint.head_state)


def test_given_split_and_label_fraction():
    features, data = _dataset("multiclass", n_items=60)
    splits = tuple("test" if i % 5 == 0 else "valid" if i % 5 == 1 else "train" for i in range(60))
    data = LabelledSet(
        data.root, data.paths, data.labels, data.targets, data.task, data.groups, splits
    )
    config = LinearEvalConfig(max_epochs=30, patience=5, batch_size=16, lr=1e-2, label_fraction=0.1)
    result = run_linear_eval(features, data, config)
    (fold,) = result.folds
    assert fold.name == "given" and fold.sizes["test"] == 12
    assert fold.sizes["train"] == 4  # round(0.1 * 36) = 4 >= 3 classes
    assert fold.effective_fraction == pytest.approx(4 / 36)


def test_mismatched_features_are_refused():
    features, data = _dataset("multiclass", n_items=12)
    with pytest.raises(DataError, match="11 feature items for 12"):
        run_linear_eval(Features(features.windows[:-1]), data, FAST)


# --- baselines (training/baselines.py) -------------------------------------------------------


def test_dct_and_mel_filterbank():
    from scipy.fft import dct

    from training.baselines import dct_matrix, mel_filterbank

    v = np.random.default_rng(0).random(128)
    np.testing.assert_allclose(v @ dct_matrix(20, 128).T, dct(v, norm="ortho")[:20])
    mel = mel_filterbank(22050)
    assert mel.shape == (128, 1025) and (mel >= 0).all() and (mel.sum(1) > 0).all()
    centres = mel.argmax(1)
    assert (np.diff(centres) >= 0).all() and centres[-1] > 900  # ordered low -> high


def test_mfcc_features_separate_two_tones(tmp_path):
    sf = pytest.importorskip("soundfile")
    from training.baselines import mfcc_features

    rng = np.random.default_rng(0)
    t = np.arange(int(59049 * 2.5)) / 22050
    paths, classes = [], []
    for i in range(12):
        freq = (300.0 if i % 2 else 2500.0) * (1 + 0.05 * rng.random())
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)
        sf.write(tmp_path / f"{i}.wav", wave.astype(np.float32), 22050)
        paths.append(tmp_path / f"{i}.wav")
        classes.append(i % 2)
    features = mfcc_features(paths, n_mfcc=13)
    assert len(features) == 12 and features.dim == 52
    assert all(w.shape[0] == 2 for w in features.windows)  # 2.5 windows: partial tail dropped
    data = LabelledSet(
        Path(tmp_path),
        tuple(paths),
        ("high", "low"),
        np.eye(2, dtype=np.float32)[classes],
        "multiclass",
        tuple(str(p) for p in paths),
        (None,) * 12,
    )
    config = LinearEvalConfig(folds=3, max_epochs=50, batch_size=8, lr=1e-2, standardise=True)
    assert run_linear_eval(features, data, config).summary["accuracy"][0] == 1.0


def test_random_encoder_batchnorm_is_recalibrated_and_seeded(tmp_path):
    from training.baselines import random_encoder_checkpoint
    from training.checkpoint import load_checkpoint, save_checkpoint
    from training.config import EncoderConfig
    from training.samplecnn import SampleCNN

    config = EncoderConfig(channels=(4,) * 11)
    rng = np.random.default_rng(0)
    blocks = [(0.2 * rng.normal(size=(3, 59049)) + 0.05).astype(np.float32) for _ in range(4)]
    ckpt = random_encoder_checkpoint(iter(blocks), config, seed=5, max_windows=10, batch_size=4)
    # Two full batches of 4; the short third batch would be over-weighted, so it is dropped.
    assert ckpt.extra["trained"] is False and ckpt.extra["bn_calibration_windows"] == 8
    assert (ckpt.source, ckpt.step) == ("clmr-embed", 0)  # export marks this as untrained
    model = SampleCNN(config).eval()
    model.load_state_dict(ckpt.encoder_state)
    x = torch.from_numpy(np.concatenate(blocks)[:8, None])
    with torch.no_grad():
        normed = model.sequential[0][1](model.sequential[0][0](x))  # first conv + BN, eval mode
    # Running stats are the cumulative statistics of the 8 windows: output ~ N(0, 1).
    torch.testing.assert_close(normed.mean((0, 2)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(normed.var((0, 2)), torch.ones(4), atol=1e-2, rtol=0)
    again = random_encoder_checkpoint(iter(blocks), config, seed=5, max_windows=10, batch_size=4)
    torch.testing.assert_close(again.encoder_state, ckpt.encoder_state)
    other = random_encoder_checkpoint(iter(blocks), config, seed=6, max_windows=10, batch_size=4)
    assert not torch.equal(
        other.encoder_state["sequential.0.0.weight"], ckpt.encoder_state["sequential.0.0.weight"]
    )
    save_checkpoint(tmp_path / "random.pt", ckpt)
    assert load_checkpoint(tmp_path / "random.pt").extra["trained"] is False
    with pytest.raises(DataError, match="at least 2"):
        random_encoder_checkpoint(iter(blocks[:1]), config, max_windows=1)


# --- report (training/report.py) -------------------------------------------------------------


def test_report_files(tmp_path):
    import json

    from training.report import write_report

    features, data = _dataset("multiclass", n_items=30)
    results = [
        run_linear_eval(features, data, LinearEvalConfig(max_epochs=5, folds=2, label_fraction=f))
        for f in (1.0, 0.2)
    ]
    paths = write_report(tmp_path / "run", results, notes={"encoder": "test.onnx"})
    assert {p.name for p in paths} == {"report.json", "report.md", "per_label.png", "fractions.png"}
    for png in ("per_label.png", "fractions.png"):
        assert (tmp_path / "run" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["config"]["label_fraction"] for r in report["runs"]] == [1.0, 0.2]
    assert report["runs"][0]["summary"]["accuracy"]["mean"] == results[0].summary["accuracy"][0]
    assert set(report["runs"][0]["per_label"]) == {"l0", "l1", "l2"}
    md = (tmp_path / "run" / "report.md").read_text()
    assert "**encoder**: test.onnx" in md and "| r0f1 |" in md and "| l2 |" in md
    single = write_report(tmp_path / "one", results[:1])
    assert not (tmp_path / "one" / "fractions.png").exists() and len(single) == 3


# --- features from an HDF5 store --------------------------------------------------------------


def test_features_from_store_round_trip(tmp_path):
    pytest.importorskip("h5py")
    from clmr_embed.store import StoreHeader, TrackRecord, open_writer
    from training.linear_eval import features_from_store

    header = StoreHeader(
        model_name="tiny",
        model_sha256="a" * 64,
        model_trained=False,
        sample_rate=22050,
        window_samples=59049,
        hop_samples=59049,
        embedding_dim=4,
        preprocessing={"decoder": "test"},
    )
    rng = np.random.default_rng(0)
    stored = {f"g/{i}.wav": rng.normal(size=(i + 1, 4)).astype(np.float32) for i in range(3)}
    with open_writer(tmp_path / "s.h5", header) as writer:
        for i, (rel, emb) in enumerate(stored.items()):
            writer.add_track(
                TrackRecord(
                    f"t{i}", rel, f"c{i}", 1.0, 22050, 1, emb, np.zeros(len(emb), np.float32)
                )
            )
        writer.add_error("g/bad.wav", "not audio")
        writer.commit()
    order = ["g/2.wav", "g/0.wav"]
    features = features_from_store(tmp_path / "s.h5", order)
    assert features.dim == 4 and len(features) == 2
    np.testing.assert_array_equal(features.windows[0], stored["g/2.wav"])
    np.testing.assert_array_equal(features.windows[1], stored["g/0.wav"])
    prefixed = features_from_store(tmp_path / "s.h5", ["audio/g/2.wav", "audio/g/0.wav"])
    np.testing.assert_array_equal(prefixed.windows[0], stored["g/2.wav"])  # extract of audio/
    with pytest.raises(DataError, match=r"1 of 2 .*'g/bad.wav' \(extract failed on it: not"):
        features_from_store(tmp_path / "s.h5", ["g/0.wav", "g/bad.wav"])

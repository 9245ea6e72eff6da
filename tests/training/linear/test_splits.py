"""Grouped k-fold, the given split, validation carving and label-fraction subsets."""

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import ConfigError, DataError
from training.linear.config import SplitConfig
from training.linear.dataset import LabelledSet
from training.linear.splits import final_split, label_fraction, make_folds, stratify_key


def _data(n=80, n_labels=4, task="multiclass", splits=None, seed=0, per_group=4):
    rng = np.random.default_rng(seed)
    if task == "multiclass":
        # Each track (group) holds one class; class 3 is rare (two tracks).
        track_class = np.array([0, 1, 2] * 100)[: n // per_group]
        track_class[[5, 11]] = 3
        targets = np.eye(n_labels, dtype=np.float32)[np.repeat(track_class, per_group)]
    else:
        targets = (rng.random((n, n_labels)) < 0.3).astype(np.float32)
    return LabelledSet(
        root=Path("/d"),
        paths=tuple(Path(f"/d/{i}.wav") for i in range(n)),
        labels=tuple(f"l{j}" for j in range(n_labels)),
        targets=targets,
        task=task,
        groups=tuple(f"g{i // per_group}" for i in range(n)),
        splits=splits or (None,) * n,
    )


def _groups(data, idx):
    return {data.groups[i] for i in idx}


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_kfold_keeps_groups_whole_and_covers_every_item_once(task):
    data = _data(task=task)
    folds = make_folds(data, SplitConfig(mode="kfold", folds=4, repeats=2, seed=3))
    assert [f.name for f in folds[:5]] == ["r0f0", "r0f1", "r0f2", "r0f3", "r1f0"]
    for r in range(2):
        tests = np.concatenate([f.test for f in folds[4 * r : 4 * r + 4]])
        assert sorted(tests) == list(range(len(data)))
    for f in folds:
        assert not _groups(data, f.train) & _groups(data, f.test)
        assert not _groups(data, f.valid) & _groups(data, f.train)
        assert not _groups(data, f.valid) & _groups(data, f.test)
        assert len(f.valid) > 0
        assert len(f.train) + len(f.valid) + len(f.test) == len(data)
    assert not np.array_equal(folds[0].test, folds[4].test)  # repeats reshuffle


def test_kfold_stratifies_and_keeps_rare_class_in_training():
    data = _data()
    for f in make_folds(data, SplitConfig(mode="kfold", folds=2, seed=0)):
        counts = data.targets[f.test].sum(0)
        assert counts[3] == 4  # one of the two rare tracks in each test half
        assert data.targets[f.train][:, 3].sum() > 0  # validation carve gave the other back


def test_folds_are_seeded():
    data = _data(task="multilabel")
    cfg = SplitConfig(mode="kfold", folds=3, seed=11, label_fraction=0.5)
    a, b = make_folds(data, cfg), make_folds(data, cfg)
    c = make_folds(data, SplitConfig(mode="kfold", folds=3, seed=12, label_fraction=0.5))
    assert all(
        np.array_equal(x.train, y.train) and np.array_equal(x.test, y.test)
        for x, y in zip(a, b, strict=True)
    )
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(a, c, strict=True))


def test_too_few_groups_is_a_data_error():
    data = _data(n=12, per_group=4, task="multilabel")
    with pytest.raises(DataError, match="at least 5 groups"):
        make_folds(data, SplitConfig(mode="kfold", folds=5))


def test_given_split_used_in_auto_mode():
    splits = tuple(("train", "train", "valid", "test")[i % 4] for i in range(80))
    data = _data(splits=splits)
    (fold,) = make_folds(data, SplitConfig())
    assert fold.name == "given"
    assert {data.splits[i] for i in fold.test} == {"test"}
    assert {data.splits[i] for i in fold.valid} == {"valid"}
    final = final_split(data, SplitConfig())
    assert len(final.test) == 0 and len(final.train) == 40 and len(final.valid) == 20


def test_given_mode_without_splits_is_refused():
    with pytest.raises(DataError, match="80 items have none"):
        make_folds(_data(), SplitConfig(mode="given"))


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_label_fraction_keeps_every_label(task):
    data = _data(task=task, n=200)
    idx = np.arange(0, 200, 2)
    subset, effective = label_fraction(idx, data.targets, 0.05, seed=0)
    assert set(subset) <= set(idx)
    present = data.targets[idx].sum(0) > 0
    assert (data.targets[subset].sum(0)[present] > 0).all()
    assert effective == len(subset) / len(idx) >= 0.05
    again, _ = label_fraction(idx, data.targets, 0.05, seed=0)
    np.testing.assert_array_equal(subset, again)


def test_label_fraction_reports_a_forced_higher_fraction():
    targets = np.eye(4, dtype=np.float32)[[0] * 16 + [1, 2, 3, 3]]
    subset, effective = label_fraction(np.arange(20), targets, 0.05, seed=1)
    assert len(subset) == 4 and effective == pytest.approx(0.2)  # one per class, not 1 of 20
    full, one = label_fraction(np.arange(20), targets, 1.0, seed=1)
    assert one == 1.0 and len(full) == 20


def test_label_fraction_size_and_validation():
    targets = np.eye(2, dtype=np.float32)[np.arange(100) % 2]
    subset, effective = label_fraction(np.arange(100), targets, 0.3, seed=0)
    assert len(subset) == 30 and effective == pytest.approx(0.3)
    with pytest.raises(ConfigError):
        label_fraction(np.arange(100), targets, 0.0, seed=0)


def test_stratify_key_is_the_rarest_positive_label():
    targets = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(stratify_key(targets), [1, 0, 0, 3])


def test_given_split_without_training_items_is_refused():
    splits = tuple(("valid", "test")[i % 2] for i in range(80))
    with pytest.raises(DataError, match="no training items"):
        make_folds(_data(splits=splits), SplitConfig())

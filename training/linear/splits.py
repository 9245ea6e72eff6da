"""Evaluation splits: given or seeded grouped stratified k-fold, and label-fraction subsets."""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from clmr_embed.errors import ConfigError, DataError
from training.linear.config import SplitConfig
from training.linear.dataset import LabelledSet

Indices = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Fold:
    """Item indices of one evaluation round; train, valid and test never share a group."""

    name: str  # "given", or "r{repeat}f{fold}" for k-fold
    train: Indices  # items the head is fitted on (after label-fraction subsampling)
    valid: Indices  # items for early stopping (may be empty: then the head trains max_epochs)
    test: Indices  # items scored
    effective_fraction: float  # len(train) / training items available, >= the asked fraction


def positives(targets: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Binary view of targets: hard labels as they are, soft scores thresholded at 0.5."""
    return targets >= 0.5


def stratify_key(targets: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """One class per item for stratification: its rarest positive label (n_labels if none)."""
    pos = positives(targets)
    counts = pos.sum(axis=0)
    rarity = np.where(pos, counts[None, :], np.iinfo(np.int64).max)
    key = rarity.argmin(axis=1)
    strata: npt.NDArray[np.int64] = np.where(pos.any(axis=1), key, targets.shape[1]).astype(
        np.int64
    )
    return strata


def _group_ids(groups: tuple[str, ...]) -> npt.NDArray[np.int64]:
    return np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)[1]


def _group_split(
    n_splits: int, key: npt.NDArray[np.int64], gid: npt.NDArray[np.int64], seed: int
) -> list[tuple[Indices, Indices]]:
    """Shuffled grouped k-fold, stratified on `key` unless every class is smaller than k."""
    if np.bincount(key).max() < n_splits:  # StratifiedGroupKFold refuses this case
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(gid)), key, gid))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Rare classes are expected; stratification is best-effort under grouping.
        warnings.filterwarnings("ignore", message="The least populated class")
        return list(splitter.split(np.zeros(len(gid)), key, gid))


def grouped_kfold(data: LabelledSet, folds: int, seed: int) -> list[tuple[Indices, Indices]]:
    """(train, test) index pairs of a shuffled StratifiedGroupKFold over all items."""
    gid = _group_ids(data.groups)
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    if n_groups < folds:
        raise DataError(
            f"{folds}-fold evaluation needs at least {folds} groups (tracks), the data has "
            f"{n_groups}; lower --folds or add data"
        )
    pairs = _group_split(folds, stratify_key(data.targets), gid, seed)
    return [(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in pairs]


def carve_validation(
    pool: Indices, data: LabelledSet, fraction: float, seed: int
) -> tuple[Indices, Indices]:
    """Split `pool` into (train, valid) by group, ~`fraction` of it in valid.

    A label whose every positive would land in valid gets one of those groups back in train.
    """
    gid = _group_ids(data.groups)[pool]
    n_groups = len(np.unique(gid))
    if fraction <= 0.0 or n_groups < 2:
        return pool, pool[:0]
    n_splits = min(max(2, round(1.0 / fraction)), n_groups)
    _, valid_pos = _group_split(n_splits, stratify_key(data.targets[pool]), gid, seed)[0]
    in_valid = np.zeros(len(pool), dtype=bool)
    in_valid[valid_pos] = True
    pos = positives(data.targets[pool])
    for j in np.flatnonzero(pos.any(axis=0) & ~pos[~in_valid].any(axis=0)):
        if pos[~in_valid, j].any():
            continue  # an earlier move already covered label j
        back = gid[np.flatnonzero(in_valid & pos[:, j])[0]]
        in_valid[gid == back] = False
    return pool[~in_valid], pool[in_valid]


def label_fraction(
    train_idx: npt.ArrayLike, targets: npt.NDArray[np.float32], fraction: float, seed: int
) -> tuple[Indices, float]:
    """A seeded random subset of ~`fraction` of `train_idx` keeping every label it has.

    Labels are visited rarest first; one random positive example is kept for each label not yet
    covered, then random items fill up to round(fraction * n).

    Returns:
        (sorted subset indices int64, effective fraction len(subset) / len(train_idx)); the
        effective fraction exceeds `fraction` when keeping every label forces it.
    """
    idx = np.asarray(train_idx, dtype=np.int64)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"label fraction must be in (0, 1], got {fraction}")
    if fraction >= 1.0 or len(idx) == 0:
        return np.sort(idx), 1.0
    rng = np.random.default_rng(seed)
    pos = positives(targets[idx])
    chosen = np.zeros(len(idx), dtype=bool)
    for j in np.argsort(pos.sum(axis=0), kind="stable"):
        if pos[:, j].any() and not (pos[:, j] & chosen).any():
            chosen[rng.choice(np.flatnonzero(pos[:, j]))] = True
    want = max(1, round(fraction * len(idx)))
    rest = rng.permutation(np.flatnonzero(~chosen))
    chosen[rest[: max(0, want - int(chosen.sum()))]] = True
    subset = np.sort(idx[chosen])
    return subset, len(subset) / len(idx)


def _finish(
    name: str,
    train: Indices,
    valid: Indices | None,
    test: Indices,
    data: LabelledSet,
    cfg: SplitConfig,
) -> Fold:
    if len(train) == 0:
        raise DataError(f"evaluation round {name!r} has no training items; check the split column")
    seed = cfg.seed + zlib.crc32(name.encode())  # per-round streams, stable across processes
    if valid is None or len(valid) == 0:
        train, valid = carve_validation(train, data, cfg.valid_fraction, seed)
    train, effective = label_fraction(train, data.targets, cfg.label_fraction, seed)
    valid, _ = label_fraction(valid, data.targets, cfg.label_fraction, seed + 1)
    return Fold(name, train, valid, test, effective)


def _members(data: LabelledSet, split: str) -> Indices:
    return np.flatnonzero(np.asarray(data.splits, dtype=object) == split).astype(np.int64)


def make_folds(data: LabelledSet, cfg: SplitConfig) -> list[Fold]:
    """The evaluation rounds: the given split once, or `repeats` x `folds` grouped k-fold rounds.

    Raises:
        DataError: "given" asked but some item lacks a split or no item is in test; too few groups.
    """
    use_given = cfg.mode == "given" or (cfg.mode == "auto" and data.has_given_split)
    if use_given:
        if not data.has_given_split:
            missing = sum(s is None for s in data.splits)
            raise DataError(
                f"split mode 'given' needs a split on every item and some test items; {missing} "
                "items have none; fill the split column or use k-fold"
            )
        train, valid, test = (_members(data, s) for s in ("train", "valid", "test"))
        return [_finish("given", train, valid, test, data, cfg)]
    folds = []
    for r in range(cfg.repeats):
        for f, (train, test) in enumerate(grouped_kfold(data, cfg.folds, cfg.seed + r)):
            folds.append(_finish(f"r{r}f{f}", train, None, test, data, cfg))
    return folds


def final_split(data: LabelledSet, cfg: SplitConfig) -> Fold:
    """Train/valid for the exported head: every non-test item for given splits, else all items."""
    if cfg.mode != "kfold" and data.has_given_split:
        train, valid = _members(data, "train"), _members(data, "valid")
        return _finish("given", train, valid, train[:0], data, cfg)
    everything = np.arange(len(data), dtype=np.int64)
    return _finish("final", everything, None, everything[:0], data, cfg)

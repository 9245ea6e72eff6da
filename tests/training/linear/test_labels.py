"""Label readers: hard / multi / soft manifests, class folders, MTAT layout, real subsets."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import DataError
from training.linear.dataset import keep_existing
from training.linear.labels import read_labels
from training.linear.mtat import mtat_split

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "audio"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_multiclass_manifest_with_split_and_group(tmp_path):
    _write(
        tmp_path / "labels.csv",
        "path,labels,split,track_id\n"
        "a/1.wav,rock,train,t1\n"
        "a/2.wav,jazz,validation,t1\n"
        "b/3.wav, rock ,test,t2\n",
    )
    data = read_labels(tmp_path)  # a folder holding labels.csv
    assert data.task == "multiclass"
    assert data.labels == ("jazz", "rock")
    np.testing.assert_array_equal(data.targets, [[0, 1], [1, 0], [0, 1]])
    assert data.splits == ("train", "valid", "test")
    assert data.groups == ("t1", "t1", "t2")
    assert data.paths[2] == tmp_path.resolve() / "b" / "3.wav"
    assert data.relpaths == ("a/1.wav", "a/2.wav", "b/3.wav")
    assert data.has_given_split


def test_multilabel_tsv_manifest_without_split(tmp_path):
    file = _write(
        tmp_path / "m" / "tags.tsv", "path\tlabels\n1.mp3\tguitar;slow\n2.mp3\t\n3.mp3\tpiano\n"
    )
    data = read_labels(file)
    assert data.task == "multilabel"
    assert data.labels == ("guitar", "piano", "slow")
    np.testing.assert_array_equal(data.targets, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert data.splits == (None, None, None) and not data.has_given_split
    assert data.groups == ("1.mp3", "2.mp3", "3.mp3")  # no group column: each file alone
    assert data.root == (tmp_path / "m").resolve()


def test_soft_manifest_ignores_metadata_columns(tmp_path):
    file = _write(
        tmp_path / "soft.csv",
        "path,happy,sad,duration_s,artist,source\n"
        "x.wav,0.8,0.1,31.5,A,web\n"
        "y.wav,0.25,1.0,12.0,B,web\n",
    )
    data = read_labels(file)
    assert data.task == "soft"
    assert data.labels == ("happy", "sad")
    np.testing.assert_allclose(data.targets, [[0.8, 0.1], [0.25, 1.0]])
    assert data.groups == ("A", "B")


def test_one_hot_score_columns_are_multiclass(tmp_path):
    file = _write(tmp_path / "oh.csv", "path,cat,dog\nx.wav,1,0\ny.wav,0,1\n")
    assert read_labels(file).task == "multiclass"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,labels\nx.wav,a\n", "no 'path' column"),
        ("path,labels\nx.wav,a\nx.wav,b\n", "row 3: path 'x.wav' repeats row 2"),
        ("path,labels,split\nx.wav,a,holdout\n", "row 2: split 'holdout'"),
        ("path,notes\nx.wav,hello\n", "no 'labels' column"),
        ("path,labels\n", "has no rows"),
    ],
)
def test_manifest_errors_name_the_problem(tmp_path, text, message):
    file = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message) as info:
        read_labels(file)
    assert "bad.csv" in str(info.value)


def test_class_folders(tmp_path):
    for name in ("blues/a.wav", "blues/sub/b.flac", "rock/c.mp3", "rock/notes.txt", "empty/x.txt"):
        _write(tmp_path / name, "")
    data = read_labels(tmp_path)
    assert data.task == "multiclass"
    assert data.labels == ("blues", "rock")  # "empty" has no audio
    assert data.relpaths == ("blues/a.wav", "blues/sub/b.flac", "rock/c.mp3")
    np.testing.assert_array_equal(data.targets.argmax(1), [0, 0, 1])


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_labels(tmp_path / "nope")
    with pytest.raises(DataError, match="no labels file and no audio"):
        read_labels(tmp_path)


def test_mtat_layout_from_annotations_and_gt_files(tmp_path):
    tags = ["guitar", "classical", "slow"]
    _write(tmp_path / "meta" / "output_labels_mtt.txt", f"MTT_LABELS = {tags!r}\n")
    _write(
        tmp_path / "meta" / "index_mtt.tsv",
        "1\t0/a-b-01-song-0-29.mp3\n2\t0/a-b-01-song-29-58.mp3\n5\tc/c-d-02-x-0-29.mp3\n",
    )
    _write(tmp_path / "meta" / "val_gt_mtt.tsv", "5\t[1.0, 0.0, 1.0]\n")
    header = "\t".join(
        f'"{c}"' for c in ["clip_id", "slow", "guitar", "rock", "classical", "mp3_path"]
    )
    rows = [
        '"1"\t"1"\t"0"\t"1"\t"1"\t"0/a-b-01-song-0-29.mp3"',
        '"2"\t"0"\t"1"\t"0"\t"0"\t"0/a-b-01-song-29-58.mp3"',
        '"35644"\t"0"\t"1"\t"0"\t"0"\t"0/dropped-1-2.mp3"',  # known-corrupt clip id
        '"9"\t"1"\t"1"\t"1"\t"1"\t"c/ignored-0-29.mp3"',
    ]  # valid has a gt file
    _write(tmp_path / "meta" / "annotations_final.csv", "\n".join([header, *rows]) + "\n")
    (tmp_path / "audio" / "0").mkdir(parents=True)
    with pytest.warns(UserWarning, match=r"\['test'\]"):
        data = read_labels(tmp_path)
    assert data.labels == tuple(tags)
    assert data.root == (tmp_path / "audio").resolve()
    assert data.relpaths == (
        "0/a-b-01-song-0-29.mp3",
        "0/a-b-01-song-29-58.mp3",
        "c/c-d-02-x-0-29.mp3",
    )
    np.testing.assert_array_equal(data.targets, [[0, 1, 1], [1, 0, 0], [1, 0, 1]])
    assert data.splits == ("train", "train", "valid")
    assert data.groups[0] == data.groups[1] == "a-b-01-song"
    assert [mtat_split(p) for p in ("9/x", "b/x", "c/x", "d/x", "f/x")] == [
        "train",
        "train",
        "valid",
        "test",
        "test",
    ]


@pytest.mark.skipif(not (SHARED / "mtat_subset").is_dir(), reason="shared MTAT meta absent")
def test_real_mtat_meta_files():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_labels(SHARED / "mtat_subset")
    assert any("train" in str(w.message) for w in caught)  # train_gt_mtt.tsv is missing
    assert len(data) == 1825 + 5329 and len(data.labels) == 50
    assert data.labels[:3] == ("guitar", "classical", "slow")
    assert data.splits.count("valid") == 1825 and data.splits.count("test") == 5329
    assert all(mtat_split(r) == s for r, s in zip(data.relpaths, data.splits, strict=True))
    present, dropped = keep_existing(data)
    assert len(present) == 1 and dropped == len(data) - 1
    assert present.labels[int(np.flatnonzero(present.targets[0])[0])] == "techno"
    assert len(set(data.groups)) < len(data) // 2  # clips grouped into tracks


@pytest.mark.skipif(not (SHARED / "gtzan_subset").is_dir(), reason="shared GTZAN absent")
def test_real_gtzan_and_medley_manifests():
    gtzan = read_labels(SHARED / "gtzan_subset")
    assert gtzan.task == "multiclass" and len(gtzan.labels) == 10
    assert (gtzan.splits.count("train"), gtzan.splits.count("valid")) == (70, 10)
    assert all(p.is_file() for p in gtzan.paths)
    medley = read_labels(SHARED / "medley_solos_subset" / "labels.csv")
    assert medley.labels == ("clarinet", "female singer")
    assert len(set(medley.groups)) == 21  # track_id


def test_paths_outside_the_root_have_no_store_relpath(tmp_path):
    file = _write(tmp_path / "m" / "labels.csv", "path,labels\n../elsewhere.wav,a\nok.wav,b\n")
    data = read_labels(file)
    assert data.paths[0] == tmp_path.resolve() / "elsewhere.wav"  # normalised, not resolved
    with pytest.raises(DataError, match="outside the data root"):
        _ = data.relpaths

"""Torch files read without torch: zip and legacy formats, equal to torch.load, nothing executed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import CheckpointError
from clmr_embed.official.torchfile import read_torch_file
from tests.fixtures.official import lightning, save

FORMATS = [pytest.param(False, id="zip"), pytest.param(True, id="legacy")]


def _tensors() -> dict[str, object]:
    base = torch.randn(6, 4)
    return {
        "float": torch.randn(3, 5),
        "double": torch.randn(4, dtype=torch.float64),
        "half": torch.randn(7).half(),
        "bfloat16": torch.randn(2, 3).bfloat16(),
        "long": torch.tensor(1000),
        "bool": torch.tensor([True, False]),
        "transposed": base.t(),  # strides (1, 4)
        "slice": base[1:5:2],  # an offset into a shared storage
        "parameter": torch.nn.Parameter(torch.ones(3)),
        "empty": torch.zeros(0, 4),
        "nested": {"list": [torch.arange(3), 1.5, "text"], "tuple": (torch.ones(1), None)},
    }


def _as_numpy(value: object) -> object:
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    if isinstance(value, dict):
        return {k: _as_numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_as_numpy(v) for v in value)
    return value


def _assert_same(got: object, want: object) -> None:
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for key in want:
            _assert_same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            _assert_same(a, b)
    else:
        assert got == want


@pytest.mark.parametrize("legacy", FORMATS)
def test_every_dtype_and_layout_equals_torch_load(tmp_path: Path, legacy: bool) -> None:
    payload = _tensors()
    path = save(tmp_path / "t.pt", payload, legacy)
    _assert_same(read_torch_file(path), _as_numpy(torch.load(path, weights_only=True)))


def test_the_real_official_head_equals_torch_load(shared_dir: Path) -> None:
    path = shared_dir / "weights" / "finetuner_checkpoint_200.pt"  # saved from a CUDA device
    got = read_torch_file(path)
    want = torch.load(path, map_location="cpu", weights_only=True)
    assert list(got) == ["0.weight", "0.bias"]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key].numpy())


@pytest.mark.parametrize("legacy", FORMATS)
def test_lightning_records_are_read_as_dicts(tmp_path: Path, legacy: bool) -> None:
    got = read_torch_file(save(tmp_path / "last.ckpt", lightning(), legacy))
    assert got["hyper_parameters"] == {"batch_size": 48, "learning_rate": 3e-4}
    assert got["global_step"] == 1234 and len(got["state_dict"]) == 2 * 77 + 2


class _Payload:
    """Unpickling this runs a shell command: the reader must refuse it, not run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", FORMATS)
def test_other_globals_are_refused_and_never_run(tmp_path: Path, legacy: bool) -> None:
    marker = tmp_path / "ran"
    path = save(tmp_path / "evil.pt", {"w": torch.ones(2), "x": _Payload(marker)}, legacy)
    with pytest.raises(CheckpointError, match=r"evil\.pt.*refused global (posix|nt)\.system"):
        read_torch_file(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really does run it: the test can fail
    assert marker.exists()


@pytest.mark.parametrize("legacy", FORMATS)
def test_truncated_and_garbage_files_name_the_file(tmp_path: Path, legacy: bool) -> None:
    whole = save(tmp_path / "whole.pt", {"w": torch.randn(1000)}, legacy).read_bytes()
    for name, data in (("cut.pt", whole[: len(whole) // 2]), ("junk.pt", b"\x00junk" * 50)):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=name):
            read_torch_file(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        read_torch_file(tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        read_torch_file(tmp_path)


class Hyper(argparse.Namespace):
    """A Namespace subclass: not one of the allowed records."""


def test_a_namespace_outside_the_allowed_records_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path / "h.pt", {"hp": Hyper(a=1)})
    with pytest.raises(CheckpointError, match="refused global"):
        read_torch_file(path)


@pytest.mark.parametrize("legacy", FORMATS)
def test_damaged_bytes_give_arrays_or_one_checkpoint_error(tmp_path: Path, legacy: bool) -> None:
    """200 seeded corruptions of a small checkpoint: no other exception ever escapes."""
    whole = save(tmp_path / "w.pt", {"w": torch.randn(40, 3), "n": torch.tensor(7)}, legacy)
    data = whole.read_bytes()
    rng = np.random.default_rng(1)
    outcomes = {"read": 0, "refused": 0}
    for i in range(200):
        damaged = bytearray(data)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            damaged[at] = int(rng.integers(0, 256))
        path = tmp_path / f"d{i}.pt"
        path.write_bytes(bytes(damaged[: int(rng.integers(len(data) // 2, len(data) + 1))]))
        try:
            read_torch_file(path)
            outcomes["read"] += 1
        except CheckpointError as exc:
            assert path.name in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50  # the damage is real, not a no-op


def test_a_deflated_storage_that_inflates_a_hundredfold_is_refused(tmp_path: Path) -> None:
    import zipfile

    plain = save(tmp_path / "plain.pt", {"w": torch.zeros(1_000_000)})  # 4 MB of zeros, stored
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item))
    assert read_torch_file(plain)["w"].shape == (1_000_000,)  # the same file, stored: fine
    with pytest.raises(CheckpointError, match=r"bomb\.pt.*inflates"):
        read_torch_file(bomb)

"""Tests of clmr_embed.store.layout (and the files it describes): manifest, segments, checksums."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from clmr_embed.errors import StoreDamagedError
from clmr_embed.store import SCHEMA_VERSION, StoreHeader, open_store, open_writer
from clmr_embed.store.layout import header_from
from tests.fixtures.store import DIM, HEADER, record


def _datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}
    f.visititems(
        lambda name, obj: found.update({name: obj}) if isinstance(obj, h5py.Dataset) else None
    )
    return found


def test_manifest_and_segment_layout(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", flags=("short",)))
        writer.add_alias("b", "b.wav", "c-a-0", "a")
        writer.add_error("bad.wav", "broken")
    with open_store(out) as store:
        (segment,) = store.segments
        assert store.generation == 1 and store.schema_version == SCHEMA_VERSION == 2
    with h5py.File(out, "r") as f:  # the store file is the small manifest
        attrs = f.attrs
        assert attrs["schema_version"] == 2 and attrs["generation"] == 1
        assert attrs["model_sha256"] == HEADER.model_sha256 and attrs["hop_samples"] == 59049
        assert attrs["engine"] == "onnxruntime" and attrs["precision"] == "fp32"
        for key in ("created", "updated", "clmr_embed_version", "preprocessing", "model_trained"):
            assert key in attrs
        manifest = json.loads(bytes(f["manifest"][()]))
        assert manifest["folder"] == "out.h5.d" and manifest["shards"] == []
        assert [s["name"] for s in manifest["segments"]] == [segment.name]
        # an external link per segment, resolved beside the store whatever the cwd
        linked = f[f"segments/{segment.name}"]
        assert linked["tracks/a/embeddings"].shape == (3, DIM)
    with h5py.File(out.with_name("out.h5.d") / segment.name, "r") as f:
        assert f["tracks/a/embeddings"].shape == (3, DIM) and f["tracks/a/mean"].shape == (DIM,)
        mirror = json.loads(f["tracks/a"].attrs["track"])  # for h5py users: the attrs as JSON
        assert mirror["flags"] == ["short"] and mirror["n_windows"] == 3
        assert len(f["tracks/b"]) == 0 and json.loads(f["tracks/b"].attrs["track"])["alias_of"]
        assert f["errors"][next(iter(f["errors"]))].attrs["relpath"] == "bad.wav"
        every = _datasets(f)
        assert {"tracks/a/embeddings", "tracks/a/starts_s", "tracks/a/mean", "catalog"} <= set(
            every
        )
        for name, dataset in every.items():  # every dataset is chunked and checksummed
            assert dataset.fletcher32 and dataset.chunks is not None, name
        catalog = bytes(f["catalog"][()])
    sidecar = out.with_name("out.h5.d") / segment.name.replace(".h5", ".json")
    assert sidecar.read_bytes() == catalog  # the sidecar lists the tracks even if the .h5 is lost
    assert json.loads(catalog)["tracks"]["b"]["alias_of"] == "a"


def test_one_chunk_per_track_names_exactly_the_damaged_track(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    header = StoreHeader(**{**HEADER.to_dict(), "embedding_dim": 512})
    with open_writer(out, header) as writer:
        writer.add_track(record("a", n=100, embeddings=np.ones((100, 512), np.float32)))
    with open_store(out) as store:
        name = store.segments[0].name
    with h5py.File(out.with_name("out.h5.d") / name, "r") as f:
        assert f["tracks/a/embeddings"].chunks == (100, 512)  # 200 kB: one chunk


def test_header_round_trips_and_names_damage(tmp_path: Path) -> None:
    assert header_from(HEADER.to_dict(), tmp_path) == HEADER
    schema1 = {k: v for k, v in HEADER.to_dict().items() if k not in ("engine", "precision")}
    schema1["preprocessing"] = json.dumps(HEADER.preprocessing)
    assert header_from(schema1, tmp_path) == HEADER  # schema 1: the defaults of that time
    with pytest.raises(StoreDamagedError, match="x.h5 has a damaged header"):
        header_from(dict(HEADER.to_dict(), hop_samples="many"), tmp_path / "x.h5")

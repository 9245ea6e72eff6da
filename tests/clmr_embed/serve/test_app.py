"""The web app's API over a tiny store: map, tags from the head, ranges, units, uploads, Host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clmr_embed.embed import Embedder
from clmr_embed.store import open_store
from tests.clmr_embed.search.stores import (
    TINY_RATE,
    extract,
    forget_roots,
    record_roots,
    reembed,
    require,
    tiny_library,
    tone,
)
from tests.fixtures.audio import write_audio

require("starlette")
from starlette.testclient import TestClient

from clmr_embed.serve import ServeConfig, create_app
from clmr_embed.serve import projection as projection_module

LOCAL = "http://127.0.0.1:8000"


def _tracks(client: TestClient) -> dict[str, dict]:
    return {t["relpath"]: t for t in client.get("/api/library").json()["tracks"]}


def test_the_page_its_assets_and_the_library(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    for asset in ("/static/app.js", "/static/style.css", "/favicon.ico"):
        assert client.get(asset).status_code == 200
    library = client.get("/api/library").json()
    assert library["labels"] == ["low", "mid", "high"] and library["projection"] == "pca"
    assert len(library["tracks"]) == 8 and library["audio"] is True
    xy = np.array([[t["x"], t["y"]] for t in library["tracks"]])
    assert np.abs(xy).max() == pytest.approx(1.0) and len(np.unique(xy, axis=0)) == 8


def test_stored_tracks_get_the_tagger_s_tags_without_audio(
    client: TestClient, tiny_lib: Path, tiny_tagger: Path
) -> None:
    tracks = _tracks(client)
    record = client.get(f"/api/tracks/{tracks['tone_05.wav']['id']}").json()
    expected = Embedder(tiny_tagger, device="cpu").tag_file(tiny_lib / "tone_05.wav", top_k=3)
    assert [t["label"] for t in record["tags"]] == [t.label for t in expected.tags]
    assert np.allclose(
        [t["score"] for t in record["tags"]], [t.score for t in expected.tags], atol=1e-4
    )
    assert expected.window_probs is not None
    assert np.allclose(record["taggram"]["probs"], expected.window_probs, atol=1e-3)
    assert record["neighbours"][0]["relpath"] != "tone_05.wav"
    scores = client.get("/api/tag-scores", params={"label": "high"}).json()["scores"]
    assert len(scores) == 8
    assert client.get("/api/tag-scores", params={"label": "jazz"}).status_code == 404
    assert client.get("/api/tracks/nope").status_code == 404


def test_audio_is_served_in_byte_ranges(client: TestClient, tiny_lib: Path) -> None:
    track_id = _tracks(client)["tone_02.wav"]["id"]
    data = (tiny_lib / "tone_02.wav").read_bytes()
    part = client.get(f"/audio/{track_id}", headers={"Range": "bytes=10-49"})
    assert part.status_code == 206 and part.content == data[10:50]
    assert part.headers["content-range"] == f"bytes 10-49/{len(data)}"
    whole = client.get(f"/audio/{track_id}")
    assert whole.status_code == 200 and whole.content == data


def test_units_list_the_most_activating_windows_first(client: TestClient, tiny_h5: Path) -> None:
    found = client.get("/api/units", params={"units": "1,5", "top_k": 6}).json()["windows"]
    with open_store(tiny_h5) as store:
        rows = [
            (store.attrs(t)["relpath"], float(s), float(e[[1, 5]].mean()))
            for t in store.track_ids
            for s, e in zip(store.starts_s(t), store.embeddings(t), strict=True)
        ]
    best = sorted(rows, key=lambda r: -r[2])[:6]
    assert [w["activation"] for w in found] == pytest.approx([r[2] for r in best], abs=1e-4)
    assert [(w["relpath"], w["start_s"]) for w in found] == [
        (r[0], pytest.approx(r[1], abs=1e-3)) for r in best
    ]
    assert all(w["end_s"] > w["start_s"] for w in found)
    for bad in ({"units": "16"}, {"units": "x"}, {"units": ""}, {"units": "1", "top_k": "0"}):
        assert client.get("/api/units", params=bad).status_code == 400


def test_an_upload_is_tagged_and_placed_among_its_neighbours(
    client: TestClient, tiny_lib: Path
) -> None:
    body = (tiny_lib / "tone_06.wav").read_bytes()
    placed = client.post("/api/upload", params={"name": "../../x/my song.wav"}, content=body)
    assert placed.status_code == 200, placed.text
    record = placed.json()
    assert record["name"] == "my song.wav"
    assert [t["label"] for t in record["tags"]] and len(record["xy"]) == 2
    assert record["neighbours"][0]["relpath"] == "tone_06.wav"
    assert record["neighbours"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    stored = _tracks(client)["tone_06.wav"]
    assert record["xy"] == pytest.approx([stored["x"], stored["y"]], abs=1e-3)  # PCA is exact


def test_uploads_over_the_cap_empty_or_not_audio_are_refused(client: TestClient) -> None:
    too_big = client.post("/api/upload", content=b"\0" * (2**20 + 1))
    assert too_big.status_code == 413
    assert client.post("/api/upload", content=b"").status_code == 400
    garbage = client.post("/api/upload", params={"name": "a.mp3"}, content=b"not audio" * 100)
    assert garbage.status_code == 422 and "a.mp3" in garbage.json()["detail"]


def test_foreign_host_headers_are_refused(client: TestClient) -> None:
    assert client.get("/", headers={"Host": "evil.example:8000"}).status_code == 403
    assert client.get("/api/library", headers={"Host": "rebind.evil.example"}).status_code == 403
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert client.get("/", headers={"Host": host}).status_code == 200


def test_the_map_is_cached_and_recomputed_when_the_store_changes(
    tiny_h5: Path,
    tiny_lib: Path,
    tiny_tagger: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = ServeConfig(store=tiny_h5, roots=(tiny_lib,), model=tiny_tagger)
    with TestClient(create_app(config), base_url=LOCAL) as first:
        before = first.get("/api/library").json()["tracks"]

    def refuse(*args: object) -> None:
        raise AssertionError("the map was recomputed although the store did not change")

    with monkeypatch.context() as patched:
        patched.setattr(projection_module, "compute_map", refuse)
        with TestClient(create_app(config), base_url=LOCAL) as second:
            assert second.get("/api/library").json()["tracks"] == before
    more = tmp_path / "more"
    more.mkdir()
    write_audio(more / "new_tone.wav", tone(1500, 2, 42), TINY_RATE)
    extract(more, tiny_h5, tiny_tagger)
    with TestClient(create_app(config), base_url=LOCAL) as third:
        assert len(third.get("/api/library").json()["tracks"]) == 9


def test_the_map_follows_the_store_generation(
    tiny_h5: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ServeConfig(store=tiny_h5, model=tiny_tagger)
    calls: list[int] = []
    compute = projection_module.compute_map

    def counting(vectors: Any, model: Any) -> Any:
        calls.append(len(vectors))
        return compute(vectors, model)

    monkeypatch.setattr(projection_module, "compute_map", counting)
    with TestClient(create_app(config), base_url=LOCAL) as client:
        before = _tracks(client)["tone_05.wav"]
    reembed(tiny_h5, "tone_05.wav", seed=3)  # new vectors, same files: a new generation
    with TestClient(create_app(config), base_url=LOCAL) as client:
        after = _tracks(client)["tone_05.wav"]
    with TestClient(create_app(config), base_url=LOCAL) as client:
        assert _tracks(client)["tone_05.wav"] == after  # unchanged store: the cached map
    assert calls == [8, 8] and (before["x"], before["y"]) != (after["x"], after["y"])


def test_audio_comes_from_the_roots_recorded_in_the_store_by_default(
    tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path
) -> None:
    record_roots(tiny_h5, tiny_lib)
    with TestClient(
        create_app(ServeConfig(store=tiny_h5, model=tiny_tagger)), base_url=LOCAL
    ) as client:
        assert client.get("/api/library").json()["audio"] is True
        track = _tracks(client)["tone_04.wav"]
        response = client.get(f"/audio/{track['id']}", headers={"Range": "bytes=0-99"})
        assert response.status_code == 206 and len(response.content) == 100
        assert response.content == (tiny_lib / "tone_04.wav").read_bytes()[:100]


def test_without_roots_no_audio_is_served(tiny_h5: Path, tiny_tagger: Path) -> None:
    forget_roots(tiny_h5)
    with TestClient(
        create_app(ServeConfig(store=tiny_h5, model=tiny_tagger)), base_url=LOCAL
    ) as client:
        library = client.get("/api/library").json()
        assert library["audio"] is False
        assert client.get(f"/audio/{library['tracks'][0]['id']}").status_code == 404


def test_umap_maps_a_larger_store_when_installed(tmp_path: Path, tiny_tagger: Path) -> None:
    if not projection_module.umap_installed():
        pytest.skip("umap-learn is not installed (optional: `auto` maps with PCA without it)")
    library = tiny_library(tmp_path / "lib", n=24)
    store = extract(library, tmp_path / "s.h5", tiny_tagger)
    config = ServeConfig(store=store, roots=(library,), model=tiny_tagger)
    with TestClient(create_app(config), base_url=LOCAL) as client:
        summary = client.get("/api/library").json()
        assert summary["projection"] == "umap" and len(summary["tracks"]) == 24
        xy = np.array([[t["x"], t["y"]] for t in summary["tracks"]])
        assert np.abs(xy).max() <= 1.0 + 1e-6 and len(np.unique(xy, axis=0)) > 20
        body = (library / "tone_07.wav").read_bytes()
        placed = client.post("/api/upload", content=body).json()
        assert placed["neighbours"][0]["relpath"] == "tone_07.wav"
        assert np.abs(np.array(placed["xy"])).max() <= 1.0 + 1e-6

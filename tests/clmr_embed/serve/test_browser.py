"""The page in a real headless browser (Debian's chromium driven by Playwright) on the demo songs.

Install the browser with `apt-get install -y chromium` (never `playwright install`: its
download does not work offline). Without it the test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from clmr_embed.audio import load_audio
from clmr_embed.store import open_store
from tests.clmr_embed.search.stores import require

require("starlette")
require("uvicorn")
require("playwright")
import uvicorn
from playwright.sync_api import Page, sync_playwright

from clmr_embed.serve import ServeConfig, create_app

CHROMIUM = Path(os.environ.get("CLMR_EMBED_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",  # root in a container: the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOT = os.environ.get("CLMR_EMBED_SCREENSHOT")  # also save the screenshot here


@pytest.fixture(scope="module")
def server(demo_h5: Path, shared_dir: Path) -> Iterator[str]:
    """The app over the demo store on a free loopback port, in a thread."""
    config = ServeConfig(store=demo_h5, roots=(shared_dir / "audio" / "clmr_demo",))
    app = create_app(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # bound before the thread starts: early connections wait in the backlog
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[Page]:
    """A fresh page of Debian's chromium (launched by path, with its own profile)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=FLAGS, headless=True
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _ids(demo_h5: Path) -> dict[str, str]:
    with open_store(demo_h5) as store:
        return dict(zip(store.paths, store.track_ids, strict=True))


def test_a_listening_session(
    server: str, page: Page, demo_h5: Path, shared_dir: Path, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    statuses: dict[str, int] = {}
    page.on("response", lambda r: statuses.__setitem__(r.url.removeprefix(server), r.status))

    # the page loads, with its favicon, and the map shows one point per track
    page.goto(server + "/")
    page.wait_for_selector("#map circle.track")
    assert page.locator("#map circle.track").count() == len(_ids(demo_h5)) == 6
    assert statuses["/static/favicon.svg"] == 200

    # clicking a point plays the track: its bytes arrive as a 206 partial response
    nirvana = _ids(demo_h5)["nirvana_smells_like_teen_spirit_22050.mp3"]
    with page.expect_response(lambda r: f"/audio/{nirvana}" in r.url and r.status == 206):
        page.locator(f'#map circle[data-id="{nirvana}"]').click()
    page.wait_for_function("document.getElementById('player').currentTime > 0.3")
    page.wait_for_selector("#tags li")
    assert page.locator("#track-title").inner_text().startswith("nirvana")
    assert page.locator("#neighbours li").count() == 5

    # the unit view lists windows in descending activation
    page.fill("#unit-input", "7, 100")
    page.click("#unit-go")
    page.wait_for_selector("#unit-windows li")
    items = page.locator("#unit-windows li")
    activations = [
        float(items.nth(i).get_attribute("data-activation") or "nan") for i in range(items.count())
    ]
    assert len(activations) == 20 and activations == sorted(activations, reverse=True)
    assert activations[0] > activations[-1]

    # upload a 20 s excerpt of a song: it is tagged and placed on the map near its song
    rate = 22050
    samples, _ = load_audio(shared_dir / "audio" / "clmr_demo" / "queen_love_of_my_life.mp3", rate)
    excerpt = tmp_path / "excerpt.wav"
    sf.write(excerpt, samples[60 * rate : 80 * rate], rate)
    page.set_input_files("#upload-file", str(excerpt))
    page.click("#upload-go")
    page.wait_for_selector("#upload-tags li", timeout=120_000)
    assert page.locator("#map circle.upload").count() == 1
    assert "queen" in page.locator("#upload-neighbours li").first.inner_text()

    shot = page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    assert len(shot) > 20_000
    if SCREENSHOT:
        Path(SCREENSHOT).write_bytes(shot)
    assert errors == []


def test_traversal_and_foreign_hosts_are_refused(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    attempts = [
        "/audio/../../../../etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/../app.py",
        "/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/audio/%2Fetc%2Fpasswd",
        "/audio//etc/passwd",
        "//etc/passwd",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
    ]
    for path in attempts:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", path)  # sent as written: no client-side normalisation
        response = connection.getresponse()
        body = response.read()
        assert response.status in (403, 404), path
        assert b"root:" not in body and b"import" not in body, path
        connection.close()
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", "/api/library", headers={"Host": f"rebound.example:{port}"})
    assert connection.getresponse().status == 403

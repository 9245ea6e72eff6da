"""The Starlette app of `clmr-embed serve`: the page, its JSON API and the tracks' audio."""

from __future__ import annotations

import contextlib
import dataclasses
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clmr_embed.errors import AudioDecodeError
from clmr_embed.serve.config import ServeConfig
from clmr_embed.serve.guard import HostGuard
from clmr_embed.serve.library import Library
from clmr_embed.serve.media import AudioFiles, serving_roots
from clmr_embed.serve.upload import receive_file, safe_name
from clmr_embed.store import EmbeddingStore, open_store

STATIC = Path(__file__).resolve().parent / "static"
MAX_UNIT_WINDOWS = 200  # windows listed for a unit selection at most


class Handlers:
    """The endpoints, over one library and its audio files."""

    def __init__(self, library: Library, media: AudioFiles, config: ServeConfig) -> None:
        self.library = library
        self.media = media
        self.config = config

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def favicon(self, request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def summary(self, request: Request) -> Response:
        return JSONResponse({**self.library.summary(), "audio": bool(self.media.roots)})

    async def tag_scores(self, request: Request) -> Response:
        scores = self.library.tag_scores(request.query_params.get("label", ""))
        if scores is None:
            raise HTTPException(404, "the model has no such label")
        return JSONResponse({"scores": scores})

    async def track(self, request: Request) -> Response:
        record = await run_in_threadpool(self.library.track, request.path_params["track_id"])
        if record is None:
            raise HTTPException(404, "no such track in the store")
        return JSONResponse(record)

    async def units(self, request: Request) -> Response:
        dim = self.library.store.header.embedding_dim
        try:
            units = [int(u) for u in request.query_params.get("units", "").split(",") if u.strip()]
            top_k = int(request.query_params.get("top_k", "20"))
        except ValueError:
            raise HTTPException(400, "units must be comma-separated integers") from None
        if not units or any(not 0 <= u < dim for u in units) or not 1 <= top_k <= MAX_UNIT_WINDOWS:
            raise HTTPException(
                400, f"give units in 0..{dim - 1} and top_k in 1..{MAX_UNIT_WINDOWS}"
            )
        windows = await run_in_threadpool(self.library.unit_windows, units, top_k)
        return JSONResponse({"units": units, "windows": windows})

    async def upload(self, request: Request) -> Response:
        name = safe_name(request.query_params.get("name", "upload"))
        path = await receive_file(request, self.config.max_upload_bytes)
        try:
            placed = await run_in_threadpool(self.library.place, path, name)
        except AudioDecodeError as exc:
            raise HTTPException(422, f"{name}: not usable audio ({exc})") from None
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse(dataclasses.asdict(placed))

    async def audio(self, request: Request) -> Response:
        path = await run_in_threadpool(self.media.path, request.path_params["track_id"])
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)


async def http_error(request: Request, exc: Exception) -> Response:
    """HTTP errors as JSON {"detail": ...}, which the page shows."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


def create_app(config: ServeConfig, store: EmbeddingStore | None = None) -> Starlette:
    """The app for `config` (the store is opened here unless given; the app closes it)."""
    store = store or open_store(config.store)
    try:
        media = AudioFiles(store, serving_roots(config.roots, store.roots))
        handlers = Handlers(Library(store, config), media, config)
    except BaseException:
        store.close()
        raise

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    routes = [
        Route("/", handlers.page),
        Route("/favicon.ico", handlers.favicon),
        Route("/api/library", handlers.summary),
        Route("/api/tag-scores", handlers.tag_scores),
        Route("/api/tracks/{track_id}", handlers.track),
        Route("/api/units", handlers.units),
        Route("/api/upload", handlers.upload, methods=["POST"]),
        Route("/audio/{track_id}", handlers.audio),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(HostGuard, bound_host=config.host)]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )

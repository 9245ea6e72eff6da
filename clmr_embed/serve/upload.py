"""Uploads: a request body streamed to a temporary file, refused (413) past the size cap."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePath

from starlette.exceptions import HTTPException
from starlette.requests import Request


def safe_name(name: str) -> str:
    """A display name for an uploaded file: its last path part, at most 200 characters."""
    return PurePath(name.replace("\\", "/")).name[:200] or "upload"


async def receive_file(request: Request, max_bytes: int) -> Path:
    """Write the request body to a temporary file and return its path (the caller removes it).

    Raises:
        HTTPException: 413 when the declared or received size passes `max_bytes`, 400 when the
            body is empty.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"the file is larger than {max_bytes // 2**20} MB")
    fd, name = tempfile.mkstemp(prefix="clmr-upload-")
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise HTTPException(413, f"the file is larger than {max_bytes // 2**20} MB")
                out.write(chunk)
        if received == 0:
            raise HTTPException(400, "the upload is empty")
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)

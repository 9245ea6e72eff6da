"""DNS-rebinding guard: requests whose Host header names a foreign host are refused (403)."""

from __future__ import annotations

import ipaddress

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(header: str) -> str:
    """The host of a Host header, without port or IPv6 brackets, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_allowed(header: str, bound_host: str) -> bool:
    """True for loopback names and, when bound elsewhere, that host or any IP literal.

    A rebinding attack needs a domain name the attacker controls that resolves to this
    machine; the browser then sends that name as Host. IP literals cannot be rebound, so they
    pass when the server listens beyond loopback; names other than localhost and the bound
    host never do.
    """
    name = host_name(header)
    if name in LOCAL_NAMES or name == host_name(bound_host):
        return True
    if host_name(bound_host) in LOCAL_NAMES:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostGuard:
    """ASGI middleware applying `is_allowed` to every HTTP request."""

    def __init__(self, app: ASGIApp, bound_host: str) -> None:
        self.app = app
        self.bound_host = bound_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            if not is_allowed(host, self.bound_host):
                response = PlainTextResponse(f"host {host!r} is not served here", 403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""The Host guard: loopback names pass, other names never, IP literals only beyond loopback."""

from __future__ import annotations

import pytest

from tests.clmr_embed.search.stores import require

require("starlette")
from clmr_embed.serve.guard import host_name, is_allowed


@pytest.mark.parametrize(
    ("header", "bound", "allowed"),
    [
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("localhost:8000", "127.0.0.1", True),
        ("LOCALHOST", "127.0.0.1", True),
        ("[::1]:8000", "127.0.0.1", True),
        ("evil.example:8000", "127.0.0.1", False),
        ("localhost.evil.example", "127.0.0.1", False),
        ("192.168.1.20:8000", "127.0.0.1", False),  # bound to loopback: only loopback names
        ("", "127.0.0.1", False),
        ("192.168.1.20:8000", "0.0.0.0", True),  # beyond loopback: IP literals cannot rebind
        ("[fe80::1]:8000", "::", True),
        ("evil.example", "0.0.0.0", False),
        ("music.lan:8000", "music.lan", True),  # the name it was told to bind
    ],
)
def test_is_allowed(header: str, bound: str, allowed: bool) -> None:
    assert is_allowed(header, bound) is allowed


def test_host_name_strips_port_and_brackets() -> None:
    assert host_name("[::1]:80") == "::1"
    assert host_name("Example.org:80") == "example.org"
    assert host_name("::1") == "::1"

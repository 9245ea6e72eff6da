"""File names as raw bytes (track ids), escaped text (store keys) and printable text (messages)."""

from __future__ import annotations

import os
import re

# C0 and C1 control characters, DEL, and the bidi overrides/isolates that reorder printed text:
# a name holding ESC[2J must not clear the user's screen, nor "\n" forge a second report line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def name_bytes(name: str | os.PathLike[str]) -> bytes:
    """The raw bytes of a name as the file system holds them (undoes Python's surrogateescape)."""
    try:
        return os.fsencode(name)
    except UnicodeEncodeError:  # a str with lone surrogates that did not come from the disk
        return os.fspath(name).encode("utf-8", "backslashreplace")


def escaped(name: str | os.PathLike[str]) -> str:
    r"""`name` as valid UTF-8 text: bytes that are not UTF-8 become `\xNN` ("caf\\xe9").

    Valid names come back unchanged, so ids and keys of ordinary files never change.
    """
    return name_bytes(name).decode("utf-8", "backslashreplace")


def shown(name: str | os.PathLike[str]) -> str:
    r"""`name` (or a message naming files) safe to print on one line: `escaped`, and control
    characters as `\n`, `\x1b`...
    """
    return _UNPRINTABLE.sub(_escape_char, escaped(name))


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

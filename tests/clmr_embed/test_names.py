"""clmr_embed.names: raw bytes for ids, escaped text for keys, printable text for every line."""

import os

from clmr_embed.names import escaped, name_bytes, shown

LATIN1 = os.fsdecode(b"caf\xe9.wav")  # how Python sees a Latin-1 name on a UTF-8 system


def test_a_name_that_is_not_utf8_keeps_its_bytes_and_escapes_as_text() -> None:
    assert name_bytes(LATIN1) == b"caf\xe9.wav"
    assert escaped(LATIN1) == "caf\\xe9.wav"
    escaped(LATIN1).encode("utf-8")  # valid UTF-8: h5py, json and rich take it


def test_valid_names_are_unchanged() -> None:
    for name in ("a/b.wav", "Café/Ñu 東京.flac", "with space.mp3"):
        assert escaped(name) == shown(name) == name
        assert name_bytes(name) == name.encode("utf-8")


def test_shown_escapes_control_characters_and_bidi_overrides() -> None:
    assert shown("a\x1b[2Jb.wav") == "a\\x1b[2Jb.wav"  # would clear the screen
    assert shown("one\ntwo\r\t.wav") == "one\\ntwo\\r\\t.wav"  # would forge report lines
    assert shown("x\x7f\x9by") == "x\\x7f\\x9by"  # DEL and a C1 control (CSI)
    assert shown("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # right-to-left override
    assert shown(os.fsdecode(b"caf\xe9\x1b.wav")) == "caf\\xe9\\x1b.wav"


def test_a_stray_surrogate_that_is_no_file_name_still_prints() -> None:
    text = shown("odd \ud800 text")
    text.encode("utf-8")
    assert "odd" in text and "text" in text

"""Library errors: raised with one line naming the value and the fix, never a CLI flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import clmr_embed

PACKAGE = Path(clmr_embed.__file__).parent
FLAG = re.compile(r"(^|[\s`(])--[a-z]")


def _raised_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant inside a `raise` statement of a module."""
    texts = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    texts.append((node.lineno, part.value))
    return texts


def test_library_messages_name_no_cli_flag() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    assert len(modules) > 20  # the walk found the package
    flagged = [
        f"{path.relative_to(PACKAGE)}:{line}: {text!r}"
        for path in modules
        for line, text in _raised_texts(path)
        if FLAG.search(text)
    ]
    assert flagged == []


def test_the_check_sees_a_flag() -> None:
    assert FLAG.search("use --force to start over") and FLAG.search("(--model x)")
    assert not FLAG.search("a 2-- b") and not FLAG.search("re-export it")

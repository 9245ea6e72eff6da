"""Imports point one way: no cycle between runtime modules, counting imports inside functions."""

from __future__ import annotations

import grimp


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(edges.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_runtime_modules_import_without_cycles() -> None:
    graph = grimp.build_graph("clmr_embed", exclude_type_checking_imports=False)
    modules = {m for m in graph.modules if m.startswith("clmr_embed")}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    assert "clmr_embed.cli.options" in edges["clmr_embed.cli.tag"]  # the graph sees imports
    assert "clmr_embed.embed" in edges["clmr_embed.cli.tag"]  # ... inside functions too
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]] and _cycles({"a": {"b"}, "b": set()}) == []

"""No import cycles between yujing's modules: the module graph, function-level imports
included, has no strongly connected component."""

from __future__ import annotations

import ast
from pathlib import Path

import yujing


def graph() -> dict[str, set[str]]:
    root = Path(yujing.__file__).parent
    files = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path
    out: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = out[name] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.update({node.module} & files.keys())
                deps.update(f"{node.module}.{a.name}" for a in node.names
                            if f"{node.module}.{a.name}" in files)  # fmt: skip
    return out


def cycles(g: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while (w := stack.pop()) != v:
                part.append(w)
            if part:
                found.append(frozenset([v, *part]))

    for v in g:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    g = graph()
    assert "yujing.ingest.kafka" in g["yujing.ingest.buses"]  # the graph does see imports
    assert cycles(g) == []


def test_the_cycle_finder_finds_one() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [frozenset("abc")]

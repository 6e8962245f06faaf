"""The developers' guide's sizes (issue 15): no module over 450 lines, no function over 80 lines, in the
engine, the add-on and the rig presets (no generated tables there to except)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "dahyf_blender", "rigs")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def oversized(max_module: int = MAX_MODULE_LINES, max_function: int = MAX_FUNCTION_LINES) -> list[str]:
    """'path: N lines' for each module, 'path:line name(): N lines' for each function (def line to
    its last line, nested functions included) over its limit."""
    out = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        lines = len(text.splitlines())
        if lines > max_module:
            out.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > max_function:
                    out.append(f"{rel}:{node.lineno} {node.name}(): {n} lines")
    return out


def test_no_module_over_450_lines_and_no_function_over_80():
    assert list(_sources()), "no sources found"
    bad = oversized()
    assert not bad, "\n".join(bad)


def test_the_size_check_sees_modules_and_functions():
    """The check can fail: with lower limits the largest module and function are reported."""
    found = oversized(max_module=300, max_function=60)
    assert any(": " in f and "()" not in f for f in found)
    assert any("()" in f for f in found)

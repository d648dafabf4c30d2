"""The library never imports Dagster: every module under journey_analytics/ but the command line
is usable without it, and the command line reaches Dagster only through pipelines.runner."""

from __future__ import annotations

import ast

from journey_analytics.settings import PROJECT_ROOT


def _imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_library_never_imports_dagster():
    found = {}
    for path in sorted((PROJECT_ROOT / "journey_analytics").rglob("*.py")):
        bad = {name for name in _imports(path) if name.split(".")[0] in ("dagster", "dagster_duckdb", "pipelines")}
        if bad:
            found[str(path.relative_to(PROJECT_ROOT))] = bad
    assert found == {"journey_analytics/cli.py": {"pipelines"}}

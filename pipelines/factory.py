"""Turns sql/<layer>/<table>.sql files into Dagster assets (key = [layer, table])."""


import re
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.catalog import entries
from journey_analytics.warehouse import ensure_schemas, fetch, sql_path

from pipelines.resources import JourneySettings

REF = re.compile(r"\b(raw|staging|quarantine|reference|identity|journeys|stages|marts)\.([a-z_][a-z0-9_]*)\b")


def sql_description(layer: str, table: str) -> str:
    """The opening comment of the SQL file: what the table is and its grain."""
    path = sql_path(layer, table)
    if not path.exists():
        return ""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return "\n".join(lines).strip()


def summary(layer: str, table: str, text: str | None = None) -> str:
    """The one-sentence description the UI shows: the data dictionary's, else the definition's first sentence."""
    entry = entries().get(f"{layer}.{table}")
    if entry:
        return entry.summary
    flat = " ".join((text or sql_description(layer, table)).split())
    return re.split(r"(?<=[.])\s", flat, maxsplit=1)[0]


def definition_metadata(layer: str, table: str) -> dict:
    """The SQL file's opening comment (grain, columns, definitions) as markdown metadata."""
    text = sql_description(layer, table)
    return {"definition": dg.MetadataValue.md(text)} if text else {}


def markdown_preview(con, qualified: str, rows: int = 10) -> str:
    """The first rows (in a fixed order) as a markdown table for the asset page."""
    frame = fetch(con, f"select * from {qualified} order by all limit {int(rows)}")

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def sql_dependencies(layer: str, table: str, aliases: dict[str, list[dg.AssetKey]]) -> list[dg.AssetKey]:
    """Asset keys of the tables a SQL file reads; `aliases` maps side tables to their writers."""
    return file_dependencies(sql_path(layer, table), aliases)


def file_dependencies(path: Path, aliases: dict[str, list[dg.AssetKey]]) -> list[dg.AssetKey]:
    """Asset keys of the tables the SQL in `path` reads (a model, or a view a model reads)."""
    if not path.exists():
        return []
    body = re.sub(r"--[^\n]*", "", path.read_text())
    keys: dict[str, dg.AssetKey] = {}
    for schema, name in REF.findall(body):
        qualified = f"{schema}.{name}"
        for key in aliases.get(qualified, [dg.AssetKey([schema, name])]):
            keys[key.to_user_string()] = key
    return [keys[k] for k in sorted(keys)]


def table_metadata(con, qualified: str, preview: bool = False) -> dict:
    """Row count, column schema (with the data dictionary's meanings), and for marts a preview."""
    rows = con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
    entry = entries().get(qualified)
    meanings = {c.name: c.meaning for c in entry.columns} if entry else {}
    columns = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = $s and table_name = $t order by ordinal_position",
        {"s": qualified.split(".")[0], "t": qualified.split(".")[1]},
    ).fetchall()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(name, str(kind), description=meanings.get(name)) for name, kind in columns]),
        "table": dg.MetadataValue.text(qualified),
        **({"preview": dg.MetadataValue.md(markdown_preview(con, qualified))} if preview else {}),
    }


def sql_model_assets(
    layer: str,
    tables: Iterable[str],
    build: Callable,
    aliases: dict[str, list[dg.AssetKey]],
    checks: dict[str, tuple[list[dg.AssetCheckSpec], Callable]] | None = None,
    descriptions: dict[str, str] | None = None,
    extra_deps: dict[str, list[dg.AssetKey]] | None = None,
) -> list[dg.AssetsDefinition]:
    """One asset per table; `build(con, table, settings)` materialises it (and may return a dict of
    figures for the asset's metadata).

    `checks` maps a table to (check specs, evaluate(con, settings) -> AssetCheckResults).
    """
    checks = checks or {}
    descriptions = descriptions or {}
    extra_deps = extra_deps or {}
    assets = []
    for table in tables:
        specs, evaluate = checks.get(table, ([], None))

        def make(table=table, specs=specs, evaluate=evaluate):
            @dg.asset(
                key=dg.AssetKey([layer, table]),
                name=None,
                group_name=layer,
                description=descriptions.get(table) or summary(layer, table),
                metadata=definition_metadata(layer, table),
                deps=sql_dependencies(layer, table, aliases) + extra_deps.get(table, []),
                check_specs=specs,
                pool="duckdb",
                kinds={"duckdb", "sql"},
            )
            def _asset(context: dg.AssetExecutionContext, journey: JourneySettings, duckdb: DuckDBResource):
                settings = journey.get()
                with duckdb.get_connection() as con:
                    ensure_schemas(con)
                    figures = build(con, table, settings)
                    metadata = table_metadata(con, f"{layer}.{table}", preview=layer == "marts")
                    if isinstance(figures, dict):  # an incremental model says what it rebuilt
                        metadata.update(figures)
                    results = list(evaluate(con, settings)) if evaluate else []
                yield dg.MaterializeResult(metadata=metadata)
                yield from results

            return _asset

        assets.append(make())
    return assets

"""Turns sql/<layer>/<table>.sql files into Dagster assets (key = [layer, table])."""


import re
from collections.abc import Callable, Iterable

import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.warehouse import ensure_schemas, sql_path

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


def sql_dependencies(layer: str, table: str, aliases: dict[str, list[dg.AssetKey]]) -> list[dg.AssetKey]:
    """Asset keys of the tables a SQL file reads; `aliases` maps side tables to their writers."""
    path = sql_path(layer, table)
    if not path.exists():
        return []
    body = re.sub(r"--[^\n]*", "", path.read_text())
    keys: dict[str, dg.AssetKey] = {}
    for schema, name in REF.findall(body):
        qualified = f"{schema}.{name}"
        for key in aliases.get(qualified, [dg.AssetKey([schema, name])]):
            keys[key.to_user_string()] = key
    return [keys[k] for k in sorted(keys)]


def table_metadata(con, qualified: str) -> dict:
    rows = con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
    columns = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = $s and table_name = $t order by ordinal_position",
        {"s": qualified.split(".")[0], "t": qualified.split(".")[1]},
    ).fetchall()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(name, str(kind)) for name, kind in columns]),
        "table": dg.MetadataValue.text(qualified),
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
    """One asset per table; `build(con, table, settings)` materialises it.

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
                description=descriptions.get(table) or sql_description(layer, table),
                deps=sql_dependencies(layer, table, aliases) + extra_deps.get(table, []),
                check_specs=specs,
                pool="duckdb",
                kinds={"duckdb", "sql"},
            )
            def _asset(context: dg.AssetExecutionContext, journey: JourneySettings, duckdb: DuckDBResource):
                settings = journey.get()
                with duckdb.get_connection() as con:
                    ensure_schemas(con)
                    build(con, table, settings)
                    metadata = table_metadata(con, f"{layer}.{table}")
                    results = list(evaluate(con, settings)) if evaluate else []
                yield dg.MaterializeResult(metadata=metadata)
                yield from results

            return _asset

        assets.append(make())
    return assets

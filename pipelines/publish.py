"""Publish layer: the read-only snapshot of the marts for BI tools, swapped in after each run."""

import duckdb as duckdb_module
import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.marts import MART_MODELS
from journey_analytics.publish import publish
from journey_analytics.settings import load_settings

from pipelines.resources import JourneySettings

KEY = dg.AssetKey(["published", "marts_snapshot"])


def _deps() -> list[dg.AssetKey]:
    settings = load_settings()
    tables = [f"marts.{m}" for m in MART_MODELS] + list(settings.publish.tables)
    return [dg.AssetKey(t.split(".")) for t in sorted(set(tables))]


@dg.asset(
    key=KEY,
    group_name="published",
    description="A read-only copy of the marts for BI tools, in a storage format DuckDB 1.x drivers read, swapped in atomically.",
    deps=_deps(),
    check_specs=[dg.AssetCheckSpec("snapshot_matches_warehouse", asset=KEY,
                                   description="Every published table has the warehouse's row count, in the configured storage version.")],
    pool="duckdb",
    kinds={"duckdb"},
)
def marts_snapshot(journey: JourneySettings, duckdb: DuckDBResource):
    settings = journey.get()
    with duckdb.get_connection() as con:
        published = publish(con, settings)
        expected = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in published.tables}
    snapshot = duckdb_module.connect(str(published.path), read_only=True)
    try:
        version = snapshot.execute("select tags['storage_version'] from duckdb_databases() where not internal and database_name <> 'temp'").fetchall()[0][0]
        counts = {t: snapshot.execute(f"select count(*) from {t}").fetchall()[0][0] for t in published.tables}
    finally:
        snapshot.close()
    yield dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(published.path)),
        "tables": dg.MetadataValue.md("\n".join(["| table | rows |", "|---|---:|", *(f"| {t} | {n:,} |" for t, n in counts.items())])),
        "storage_version": dg.MetadataValue.text(str(version)),
        "published_at": dg.MetadataValue.text(published.published_at.isoformat() + "Z"),
    })
    mismatched = sorted(t for t in expected if expected[t] != counts.get(t))
    yield dg.AssetCheckResult(check_name="snapshot_matches_warehouse",
                              passed=not mismatched and str(version).startswith(settings.publish.storage_version),
                              metadata={"mismatched_tables": ", ".join(mismatched) or "none", "storage_version": str(version)})


publish_assets = [marts_snapshot] if load_settings().publish.enabled else []

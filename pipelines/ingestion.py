"""Ingestion: one partitioned asset per source (its deliveries), and the staged tables after them.

`deliveries/<source>` is partitioned by delivery date: each run reads the landing folders of its
dates, validates every row and replaces those dates' slices of the source's staged tables,
quarantine.rejected_rows, quarantine.load_errors and raw.landed_files. A range of dates runs in
one process (single-run backfills). The staged tables (`staging/stg_<source>__<entity>`) are
assets of their own, unpartitioned, downstream of their source's deliveries: their step records
each table's rows and columns. Dagster's SQLite event log stores a planned and a recorded
materialisation per partition per asset key, about 15-20 ms each, so one partitioned key per
source rather than per staged table halves that bookkeeping (docs/performance.md).
"""


import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.ingest.landing import ENTITIES, SOURCES, table_name
from journey_analytics.staging import ensure_tables, ingest
from journey_analytics.warehouse import ensure_schemas

from pipelines.factory import table_metadata
from pipelines.partitions import delivery_dates
from pipelines.resources import JourneySettings

ENTITY_DESCRIPTIONS = {
    ("web", "events"): "Web events (Segment/RudderStack JSON lines and Snowplow enriched CSV), one row per event as delivered, validated and in UTC.",
    ("email", "events"): "SendGrid webhook events, one row per event as delivered, with hashed recipient emails.",
    ("crm", "contacts"): "CRM contact snapshot rows, one per contact per snapshot file, with hashed emails and phones.",
    ("crm", "activities"): "CRM interactions (calls, chats, tickets, surveys ...), one row per activity as delivered.",
    ("crm", "deals"): "CRM deal stage changes, one row per deal x stage change as delivered.",
    ("store", "stores"): "Store descriptions with their IANA timezone, one row per store per stores file.",
    ("store", "transactions"): "Point-of-sale receipt lines in store-local time, one row per line as delivered.",
    ("store", "visits"): "In-store visits, trials and events in store-local time, one row per visit as delivered.",
}


def staged_key(source: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", table_name(source, entity)])


def delivery_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["deliveries", source])


def ingestion_asset(source: str) -> dg.AssetsDefinition:
    tables = ", ".join(f"staging.{table_name(source, entity)}" for entity in ENTITIES[source])
    spec = dg.AssetSpec(
        delivery_key(source), group_name="ingestion", kinds={"duckdb", "polars"},
        description=f"The {source} landing files of each delivery date, validated and loaded into {tables} "
                    "(bad rows to quarantine.rejected_rows, every file to raw.landed_files).",
    )

    @dg.multi_asset(
        name=f"ingest_{source}",
        specs=[spec],
        partitions_def=delivery_dates,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="duckdb",
        can_subset=False,
    )
    def _ingest(context: dg.AssetExecutionContext, journey: JourneySettings, duckdb: DuckDBResource):
        settings = journey.get()
        dates = [dt.date.fromisoformat(k) for k in context.partition_keys]
        with duckdb.get_connection() as con:
            ensure_schemas(con)
            loads = ingest(con, source, dates, settings)
        files = sum(load.files for load in loads)
        quarantined = sum(load.quarantined for load in loads)
        errors = sum(load.load_errors for load in loads)
        context.log.info(f"{source}: {len(dates)} delivery date(s), {files} file(s), {quarantined} row(s) quarantined, {errors} load error(s)")
        yield dg.MaterializeResult(
            asset_key=delivery_key(source),
            metadata={
                "delivery_dates": len(dates),
                "files": files,
                **{f"rows_staged_this_run ({table_name(source, entity)})": sum(load.staged[entity] for load in loads)
                   for entity in ENTITIES[source]},
                "rows_quarantined_this_run": quarantined,
                "load_errors_this_run": errors,
            },
        )

    return _ingest


ingestion_assets = [ingestion_asset(source) for source in SOURCES]


@dg.multi_asset(
    name="staged_tables",
    specs=[
        dg.AssetSpec(staged_key(source, entity), description=ENTITY_DESCRIPTIONS[(source, entity)], group_name="ingestion",
                     deps=[delivery_key(source)], kinds={"duckdb"})
        for source in SOURCES for entity in ENTITIES[source]
    ],
    pool="duckdb",
    can_subset=True,
)
def staged_tables(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    """Every delivery loaded so far, table by table: rows and columns (the deliveries' own runs
    wrote the rows)."""
    with duckdb.get_connection() as con:
        ensure_schemas(con)
        ensure_tables(con)
        for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
            yield dg.MaterializeResult(asset_key=key, metadata=table_metadata(con, f"staging.{key.path[-1]}"))


#: side tables every ingestion asset writes a slice of: readers depend on all staged tables
SIDE_TABLES = {
    name: [staged_key(s, e) for s in SOURCES for e in ENTITIES[s]]
    for name in ("raw.landed_files", "quarantine.rejected_rows", "quarantine.load_errors")
}

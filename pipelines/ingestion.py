"""Ingestion: one partitioned asset per source, writing that source's staged tables.

Each run reads the landing folders of its delivery dates, validates every row and replaces those
dates' slices of the staged tables, quarantine.rejected_rows, quarantine.load_errors and
raw.landed_files. A range of dates runs in one process (single-run backfills).
"""


import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.ingest.landing import ENTITIES, SOURCES, table_name
from journey_analytics.staging import ingest
from journey_analytics.warehouse import ensure_schemas

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


def ingestion_asset(source: str) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(staged_key(source, entity), description=ENTITY_DESCRIPTIONS[(source, entity)], group_name="ingestion",
                     kinds={"duckdb", "polars"})
        for entity in ENTITIES[source]
    ]

    @dg.multi_asset(
        name=f"ingest_{source}",
        specs=specs,
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
        for entity in ENTITIES[source]:
            staged = sum(load.staged[entity] for load in loads)
            yield dg.MaterializeResult(
                asset_key=staged_key(source, entity),
                metadata={
                    "delivery_dates": len(dates),
                    "files": files,
                    "rows_staged_this_run": staged,
                    "rows_quarantined_this_run (source)": quarantined,
                    "load_errors_this_run (source)": errors,
                },
            )

    return _ingest


ingestion_assets = [ingestion_asset(source) for source in SOURCES]

#: side tables every ingestion asset writes a slice of: readers depend on all ingestion assets
SIDE_TABLES = {
    name: [staged_key(s, e) for s in SOURCES for e in ENTITIES[s]]
    for name in ("raw.landed_files", "quarantine.rejected_rows", "quarantine.load_errors")
}

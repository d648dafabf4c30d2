"""Staging models: de-duplication, store times in UTC, contact versions, the canonical events and
the load audit, each built from sql/staging/<table>.sql, with the checks analysts rely on."""


import dagster as dg

from journey_analytics.ingest.landing import SOURCES
from journey_analytics.staging import KEYED_ROWS, STAGING_MODELS, build_staging_model, source_summary, unbalanced_files

from pipelines.factory import file_dependencies, sql_model_assets
from pipelines.ingestion import SIDE_TABLES


def _conservation(con, settings):
    totals = {row["source"]: row for row in source_summary(con).to_dicts()}
    unbalanced = unbalanced_files(con)
    for source in SOURCES:
        bad = unbalanced.filter(unbalanced["source"] == source).drop("source")
        counts = totals.get(source, {})
        yield dg.AssetCheckResult(
            check_name=f"conservation_{source}",
            passed=bad.height == 0,
            metadata={
                **{k: int(counts.get(k) or 0) for k in ("files", "rows_read", "rows_staged", "rows_quarantined", "rows_duplicate")},
                "unbalanced_files": dg.MetadataValue.json(bad.to_dicts()),
            },
        )


def _events_checks(con, settings):
    duplicated, untimed = con.execute(
        "select count(*) - count(distinct event_key), count(*) - count(occurred_at) from staging.events"
    ).fetchall()[0]
    yield dg.AssetCheckResult(check_name="event_key_unique", passed=duplicated == 0, metadata={"duplicated_keys": int(duplicated)})
    yield dg.AssetCheckResult(check_name="occurred_at_present", passed=untimed == 0, metadata={"events_without_time": int(untimed)})


def _store_time_checks(con, settings):
    missing = con.execute("select count(*) from staging.store_times where occurred_at is null").fetchall()[0][0]
    yield dg.AssetCheckResult(check_name="every_local_time_converted", passed=missing == 0, metadata={"unconverted": int(missing)})


CHECKS = {
    "load_audit": (
        [dg.AssetCheckSpec(f"conservation_{s}", asset=dg.AssetKey(["staging", "load_audit"]),
                           description=f"Every {s} row read is staged, quarantined or a removed duplicate, file by file.")
         for s in SOURCES],
        _conservation,
    ),
    "events": (
        [dg.AssetCheckSpec("event_key_unique", asset=dg.AssetKey(["staging", "events"]), description="No event appears twice."),
         dg.AssetCheckSpec("occurred_at_present", asset=dg.AssetKey(["staging", "events"]), description="Every event has a UTC time.")],
        _events_checks,
    ),
    "store_times": (
        [dg.AssetCheckSpec("every_local_time_converted", asset=dg.AssetKey(["staging", "store_times"]),
                           description="Every store-local time found its timezone span and has a UTC time.")],
        _store_time_checks,
    ),
}

DESCRIPTIONS = {
    "timezone_periods": "Spans of constant UTC offset for every timezone the stores use, as ranges of local wall-clock time (built in Python from the IANA database).",
}

staging_assets = sql_model_assets(
    "staging",
    STAGING_MODELS,
    build=lambda con, table, settings: build_staging_model(con, table, settings),
    # work tables and the slice log of staging.events' and staging.duplicate_rows' own builds (incremental runs)
    aliases={**SIDE_TABLES, "staging.events_scope": [], "staging.duplicates_before": [], "staging.slice_changes": [],
             "staging.changed_contacts": [],
             # the view of every staged row with its duplicate key: the staged tables it reads
             "staging.keyed_rows": file_dependencies(KEYED_ROWS, SIDE_TABLES)},
    checks=CHECKS,
    descriptions=DESCRIPTIONS,
    extra_deps={"timezone_periods": [dg.AssetKey(["staging", t]) for t in ("stg_store__stores", "stg_store__transactions", "stg_store__visits")]},
)

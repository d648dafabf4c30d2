"""Jobs, the daily schedule, the landing-folder sensor and the refresh that follows ingestion.

On by default, so a fresh `dagster dev` (or `journey ui`) runs the pipeline by itself:

* `watch_landing_folder` (every minute) starts `ingest_deliveries` for the delivery dates whose
  files appeared, changed or disappeared since it last looked, one run per range of consecutive dates;
* `daily_ingest` (03:00 UTC) ingests yesterday's delivery date, so a day that closed is loaded
  even when the sensor is off, and catches files copied in with old modification times;
* `refresh_after_ingestion` starts `refresh_downstream` (staging, identity, journeys, stages,
  marts, the published snapshot) once new deliveries are in and no ingestion run or backfill is
  still queued or running: a backfill of a year of delivery dates ends in one refresh, not 365.

Backfills by delivery date: select `ingest_deliveries` (or the `deliveries/<source>` assets) in the UI and
launch a backfill over a range of dates; each range runs as one run (single-run backfill policy).
"""

import datetime as dt
import json

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from journey_analytics.ingest.landing import contiguous_ranges, delivery_fingerprints
from journey_analytics.settings import load_settings

from pipelines.ingestion import ingestion_assets

INGESTION = dg.AssetSelection.assets(*ingestion_assets)
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

ingest_job = dg.define_asset_job(
    "ingest_deliveries", selection=INGESTION,
    description="Load the landing files of the chosen delivery dates into raw, quarantine and staging slices.",
)
refresh_job = dg.define_asset_job(
    "refresh_downstream", selection=dg.AssetSelection.all() - INGESTION,
    description="Rebuild everything after ingestion: staging, identity, journeys, stages, marts and the published snapshot.",
)


def changed_deliveries(previous: dict[str, str], current: dict[str, str], first_day: dt.date, last_day: dt.date) -> tuple[list[str], list[str]]:
    """(delivery dates to ingest, dates outside the partitions) between two landing fingerprints:
    dates whose files appeared or changed, and dates whose folder disappeared (rerun to empty them)."""
    changed = sorted(d for d in set(previous) | set(current) if previous.get(d) != current.get(d))
    inside = [d for d in changed if first_day <= dt.date.fromisoformat(d) <= last_day]
    return inside, [d for d in changed if d not in inside]


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts ingestion for each delivery date whose landing files appeared, changed or disappeared.")
def watch_landing_folder(context: dg.SensorEvaluationContext):
    settings = load_settings()
    previous = json.loads(context.cursor) if context.cursor else {}
    current = delivery_fingerprints(settings.landing_dir)
    last = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    todo, outside = changed_deliveries(previous, current, settings.ingest.delivery_start_date, last)
    if outside:
        context.log.warning(f"delivery folders outside {settings.ingest.delivery_start_date}..{last} ignored "
                            f"(set ingest.delivery_start_date earlier): {', '.join(outside)}")
    if not todo:
        context.update_cursor(json.dumps(current, sort_keys=True))
        return dg.SkipReason(f"no new or changed delivery folders under {settings.landing_dir}")
    context.update_cursor(json.dumps(current, sort_keys=True))
    return [_ingest_request(first, last, current) for first, last in contiguous_ranges([dt.date.fromisoformat(d) for d in todo])]


def _ingest_request(first: dt.date, last: dt.date, current: dict[str, str]) -> dg.RunRequest:
    """One run per range of consecutive delivery dates (a fresh landing folder of years is a few
    runs, not one per day); the run key names every date's fingerprint, so a change reruns it."""
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    key = ",".join(f"{d}:{current.get(d, 'removed')}" for d in days)
    if first == last:
        return dg.RunRequest(partition_key=first.isoformat(), run_key=key)
    return dg.RunRequest(run_key=key, tags={"dagster/asset_partition_range_start": first.isoformat(),
                                            "dagster/asset_partition_range_end": last.isoformat()})


@dg.schedule(job=ingest_job, cron_schedule="0 3 * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every night: ingest yesterday's delivery date (the refresh sensor then rebuilds everything downstream).")
def daily_ingest(context: dg.ScheduleEvaluationContext):
    day = (context.scheduled_execution_time.date() - dt.timedelta(days=1)).isoformat()
    return dg.RunRequest(partition_key=day, run_key=f"daily:{day}")


def _latest(instance: dg.DagsterInstance, keys) -> float:
    times = [event.timestamp for key in keys if (event := instance.get_latest_materialization_event(key)) is not None]
    return max(times, default=0.0)


@dg.sensor(job=refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Rebuilds everything downstream once new deliveries are ingested and no ingestion is still queued or running.")
def refresh_after_ingestion(context: dg.SensorEvaluationContext):
    instance = context.instance
    ingested = _latest(instance, [key for a in ingestion_assets for key in a.keys])
    if not ingested:
        return dg.SkipReason("nothing ingested yet")
    refreshed = _latest(instance, refresh_job.selection.resolve(context.repository_def.asset_graph)) if context.repository_def else 0.0
    if refreshed >= ingested:
        return dg.SkipReason("everything downstream is newer than the last ingestion")
    if instance.get_runs_count(dg.RunsFilter(statuses=IN_FLIGHT)):
        return dg.SkipReason("runs are queued or in progress; waiting for them to finish")
    if instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=1):
        return dg.SkipReason("a backfill is in progress; refreshing once it ends")
    return dg.RunRequest(run_key=f"refresh-after:{ingested:.6f}")


jobs = [ingest_job, refresh_job]
schedules = [daily_ingest]
sensors = [watch_landing_folder, refresh_after_ingestion]

"""Runs every asset through Dagster in this process (what `journey run` does): the command line's
bridge to the code location. The library (journey_analytics/) never imports Dagster; its `run`
command imports this module when it runs."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass, field
from typing import Protocol

import dagster as dg

from journey_analytics.deliveries import dates_to_ingest, record_ingested
from journey_analytics.evaluation import pairwise_scores, truth_folder
from journey_analytics.ingest.landing import contiguous_ranges, delivery_dates, delivery_fingerprints
from journey_analytics.settings import Settings, load_settings
from journey_analytics.staging import source_summary
from journey_analytics.warehouse import connect, fetch
from pipelines.definitions import defs
from pipelines.ingestion import ingestion_assets


@dataclass
class RunOutcome:
    settings: Settings
    first_date: dt.date | None
    last_date: dt.date | None
    date_count: int
    summary: list[dict]
    load_errors: list[str]
    event_count: int
    failed_checks: list[str]
    extra_lines: list[str] = field(default_factory=list)


#: Dagster's console logger at WARNING: the command prints its own summary (the UI keeps every event)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class NothingToLoad(RuntimeError):
    pass


class Progress(Protocol):
    """What `run_all` reports as it goes (the command line draws it as a progress bar)."""

    def start(self, total_steps: int) -> None: ...

    def step(self, step_key: str, status: str) -> None: ...  # status: started, succeeded, failed


def _report_steps(instance, progress: Progress | None) -> None:
    """Forward the instance's step events to `progress` (Dagster stores each event through
    handle_new_event; the run ids are not known before the runs start, so listen on all)."""
    if progress is None:
        return
    store = instance.handle_new_event
    statuses = {"STEP_START": "started", "STEP_SUCCESS": "succeeded", "STEP_FAILURE": "failed"}

    def handle(event, **kwargs):
        store(event, **kwargs)
        if event.is_dagster_event and event.dagster_event.event_type_value in statuses:
            progress.step(event.dagster_event.step_key or "", statuses[event.dagster_event.event_type_value])

    instance.handle_new_event = handle


#: Tags on every run this module starts: the process that runs it. Dagster frees a run's pool slot
#: when the run ends, but a process that is killed (by the out-of-memory killer, say) leaves its run
#: "started" and the slot of the pool "duckdb" claimed, and every later run would wait for that slot
#: for ever. Dagster's run monitoring only looks after runs that its daemon launched.
HOST_TAG, PID_TAG = "journey/host", "journey/pid"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed, and free the pool slots of, the unfinished runs that `journey run` started on
    this host in a process that no longer exists (or in this process, which starts its runs one at a
    time and none before this). Returns their run ids."""
    released = []
    host = socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and (pid == os.getpid() or not _alive(pid)):
            instance.report_run_failed(run, message=f"The process that ran it ({host}, pid {pid}) ended before the run did.")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


def run_all(progress: Progress | None = None) -> RunOutcome:
    settings = load_settings()
    dates = delivery_dates(settings.landing_dir)
    if not dates:
        raise NothingToLoad(f"no delivery folders (<source>/<YYYY-MM-DD>/) under {settings.landing_dir}")
    start = settings.ingest.delivery_start_date
    if dates[0] < start:
        raise NothingToLoad(
            f"delivery folder {dates[0]} is before ingest.delivery_start_date ({start}); set it earlier in journey.toml"
        )
    instance = dg.DagsterInstance.get()
    released = release_dead_runs(instance)
    tags = process_tags()
    graph = defs.resolve_asset_graph()
    all_assets = list(defs.assets)
    ingestion_keys = [key for a in ingestion_assets for key in a.keys]
    downstream = [k for k in graph.get_all_asset_keys() if k not in ingestion_keys]
    failed: list[str] = []
    current = delivery_fingerprints(settings.landing_dir)
    ranges = contiguous_ranges(dates_to_ingest(settings, current))
    if progress:
        downstream_steps = sum(1 for a in all_assets if set(a.keys) & set(downstream))
        progress.start(len(ranges) * len(ingestion_assets) + downstream_steps)
    _report_steps(instance, progress)

    results = []
    for first_day, last_day in ranges:
        results.append(
            dg.materialize(
                all_assets,
                selection=ingestion_keys,
                instance=instance,
                resources=defs.resources,
                tags={
                    **tags,
                    "dagster/asset_partition_range_start": first_day.isoformat(),
                    "dagster/asset_partition_range_end": last_day.isoformat(),
                },
                raise_on_error=True,
                run_config=QUIET,
            )
        )
    record_ingested(settings, current)
    results.append(dg.materialize(all_assets, selection=downstream, instance=instance, resources=defs.resources, raise_on_error=True,
                                  run_config=QUIET, tags=tags))
    for result in results:
        for event in result.get_asset_check_evaluations():
            if not event.passed:
                failed.append(f"{event.asset_key.to_user_string()}:{event.check_name}")

    with connect(settings, read_only=True) as con:
        summary = [
            {**row, "balanced": "yes" if row.pop("is_balanced") else "NO"} for row in source_summary(con).to_dicts()
        ]
        errors = [r["message"] + (f" (line {r['line']})" if r["line"] else "") for r in
                  fetch(con, "select message, line from quarantine.load_errors order by _source_file, line nulls first").to_dicts()]
        events = con.execute("select count(*) from staging.events").fetchall()[0][0]
        persons = con.execute(
            "select count(*), sum(case when contact_ids + user_ids > 0 then 1 else 0 end) from identity.persons"
        ).fetchall()[0]
        refused = con.execute("select count(*) from identity.link_decisions where decision = 'refused'").fetchall()[0][0]
        truth = truth_folder(settings.landing_dir)
        scores = pairwise_scores(con, truth) if truth else None
    extra = [f"Marked failed, and freed the DuckDB pool slot of, run {run_id}: the process that ran it had ended"
             for run_id in released]
    extra += [f"Persons in identity.persons: {persons[0]} ({persons[1]} with a CRM contact or login); links refused by the guards: {refused}"]
    if scores:
        extra.append(
            f"Identity vs the generator's truth ({scores['truth_events']} events): pairwise precision "
            f"{scores['pairwise_precision']:.4f}, recall {scores['pairwise_recall']:.4f}"
        )
    return RunOutcome(settings, dates[0], dates[-1], len(dates), summary, errors, events, failed, extra)

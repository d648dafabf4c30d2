"""Runs every asset through Dagster in this process (what `journey run` does).

Dagster is imported lazily so that the library stays usable without it; this module is the
command line's bridge to the code location in pipelines/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from journey_analytics import incremental
from journey_analytics.evaluation import pairwise_scores, truth_folder
from journey_analytics.ingest.landing import contiguous_ranges, delivery_dates, delivery_fingerprints
from journey_analytics.settings import Settings, load_settings
from journey_analytics.staging import source_summary
from journey_analytics.warehouse import connect, fetch, table_exists


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


FINGERPRINTS = "raw.delivery_fingerprints"


def ingestion_fingerprint(settings: Settings) -> str:
    """What staged rows depend on besides the files: the sources' settings, mappings and the salt."""
    parts = [settings.model_dump_json(include={"ingest", "web", "email", "crm", "store", "mappings"}),
             hashlib.sha256(settings.hash_salt.encode()).hexdigest()]
    return incremental.fingerprint(parts, [])


def dates_to_ingest(settings: Settings, current: dict[str, str]) -> list[dt.date]:
    """Delivery dates whose files appeared, changed or disappeared since the warehouse last loaded
    them (raw.delivery_fingerprints); every date, landed or loaded, when the ingestion settings
    changed or the warehouse keeps no fingerprints. A removed folder is rerun to empty its slice."""
    every = {dt.date.fromisoformat(d) for d in current}
    if not settings.warehouse_path.exists():
        return sorted(every)
    with connect(settings, read_only=True) as con:
        loaded = set()
        if table_exists(con, "raw.landed_files"):
            loaded = {r[0] for r in con.execute("select distinct _delivery_date from raw.landed_files").fetchall()}
        if not table_exists(con, FINGERPRINTS):
            return sorted(every | loaded)
        rows = con.execute(f"select delivery_date, fingerprint, settings from {FINGERPRINTS}").fetchall()
    if any(row[2] != ingestion_fingerprint(settings) for row in rows):
        return sorted(every | loaded)
    previous = {row[0].isoformat(): row[1] for row in rows}
    changed = {dt.date.fromisoformat(d) for d in set(current) | set(previous) if current.get(d) != previous.get(d)}
    return sorted(changed | (loaded - {dt.date.fromisoformat(d) for d in previous}))


def record_ingested(settings: Settings, current: dict[str, str]) -> None:
    """Remember each delivery date's landing fingerprint once its ingestion succeeded."""
    with connect(settings) as con:
        con.execute(f"create or replace table {FINGERPRINTS} (delivery_date date, fingerprint varchar, settings varchar)")
        print_ = ingestion_fingerprint(settings)
        for day, value in sorted(current.items()):
            con.execute(f"insert into {FINGERPRINTS} values ($d, $f, $s)", {"d": dt.date.fromisoformat(day), "f": value, "s": print_})


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


def run_all(progress: Progress | None = None) -> RunOutcome:
    import dagster as dg  # noqa: PLC0415 - the library proper never needs dagster

    from pipelines.definitions import defs  # noqa: PLC0415
    from pipelines.ingestion import ingestion_assets  # noqa: PLC0415

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
                    "dagster/asset_partition_range_start": first_day.isoformat(),
                    "dagster/asset_partition_range_end": last_day.isoformat(),
                },
                raise_on_error=True,
                run_config=QUIET,
            )
        )
    record_ingested(settings, current)
    results.append(dg.materialize(all_assets, selection=downstream, instance=instance, resources=defs.resources, raise_on_error=True, run_config=QUIET))
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
    extra = [f"Persons in identity.persons: {persons[0]} ({persons[1]} with a CRM contact or login); links refused by the guards: {refused}"]
    if scores:
        extra.append(
            f"Identity vs the generator's truth ({scores['truth_events']} events): pairwise precision "
            f"{scores['pairwise_precision']:.4f}, recall {scores['pairwise_recall']:.4f}"
        )
    return RunOutcome(settings, dates[0], dates[-1], len(dates), summary, errors, events, failed, extra)

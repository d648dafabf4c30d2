"""The customer stream: every event with its person, in order, with sessions and journeys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from journey_analytics import identity, incremental
from journey_analytics.settings import Settings
from journey_analytics.warehouse import (
    SQL_DIR, build_in_parts, build_model, create_from_file, memory_limit_bytes, part_bounds, parts_for, sql_path, table_exists,
    write_table,
)

MODELS = ("event_persons", "customer_stream")
STEPS = SQL_DIR / "journeys" / "steps"
STAGE_STEPS = SQL_DIR / "stages" / "steps"

#: What changed in the stream since each model reading it was last built (docs/performance.md,
#: "Incremental runs"): one row per reader and person whose rows changed from its
#: from_sequence_number on (1: the whole stream, also for a person who no longer exists); a row
#: with a null person: everything changed (the stream was rebuilt whole).
STREAM_LOG = "journeys.stream_changes"


@dataclass(frozen=True)
class StreamReader:
    """How a model reads only the stream's changes (build_stream_consumer): the settings sections
    that reach it, through its reference tables (for its fingerprint); the steps that move its
    scope earlier than each person's first changed row (each a SELECT over the scope the one
    before left), with values of their own, and the columns they add to the scope (which a whole
    build's empty scope gets too, for the model's SQL to bind); the statements run in the
    transaction that replaces its rows; and the other readers whose rows it reads (their SQL is
    part of its fingerprint: changed, they are built again whole, and so must it be)."""

    settings_read: tuple[str, ...]
    scope_steps: tuple[Path, ...] = ()
    scope_values: dict = field(default_factory=dict)
    #: the scope's columns beyond person_id, from_sequence_number and read_from_sequence_number
    scope_columns: tuple[tuple[str, str], ...] = ()
    also: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    #: which of a scope person's rows are built again (a condition on the model's row, named by the
    #: model's table name, and its person's row `scope` of journeys.stream_scope)
    rows_from: str = "{name}.sequence_number >= scope.from_sequence_number"
    #: the model's SQL when it is not sql/<layer>/<name>.sql (a model built in steps)
    sql_files: tuple[Path, ...] = ()
    #: its SQL takes a range of person ids ($part_from up to $part_to, null: open on that side) in
    #: every scan of a table with a person's rows, and a whole build runs it in the ranges the
    #: stream was last built whole in (STREAM_RANGES, build_in_parts): the stream, and each reader
    #: built this way, is written range by range, so a part's scans skip the other ranges' row
    #: groups by their min/max person id, and its sorts fit in memory where the whole would spill
    #: (docs/performance.md, "customer_stream in parts"). Where a join already keeps a scan's rows
    #: to the part, the filter decides no rows; it is there so that that scan skips the other
    #: ranges too (not timed on its own).
    in_parts: bool = False


#: customer_activity's kept rows of a changed person take its first purchase from the rows written
#: (a continued person only gains events, so its first purchase can only get earlier)
_FIRST_PURCHASE_UPDATE = """
update journeys.customer_activity as activity
set first_purchase_at = rebuilt.first_purchase_at
from (select distinct person_id, first_purchase_at from journeys.customer_activity_rebuilt) as rebuilt
where rebuilt.person_id = activity.person_id and activity.first_purchase_at is distinct from rebuilt.first_purchase_at
"""

#: the kept current spells of a person run to the data's end, which moves with new data (the same
#: expression as stage_spells.sql's for them)
_CURRENT_SPELL_HOURS = """
update stages.stage_spells
set hours_in_stage = (epoch(cast($as_of as timestamp)) - epoch(entered_at)) / 3600.0
where unit_type = 'person' and is_current
"""

#: the models that build again only the changed persons' rows from from_sequence_number on, or from
#: a little before: customer_activity from the last own event before it; touches and funnel_units
#: from the start of the journey holding it (steps/journey_scope.sql; touches and journey_paths
#: always by journey); funnel_levels the chains started within the funnel window before it
#: (stages/steps/funnel_scope.sql); stage_spells journeys from that journey's start and person
#: spells from the last one that starts before it, per stage model (stages/steps/spell_scope.sql).
STREAM_READERS = {
    "journeys.customer_activity": StreamReader(("marts", "journeys"), (STEPS / "customer_activity_scope.sql",),
                                               also=(_FIRST_PURCHASE_UPDATE,), in_parts=True),
    "journeys.touches": StreamReader(("marts", "journeys"), (STEPS / "journey_scope.sql",), {"unit": "journey"}, in_parts=True),
    "journeys.journey_paths": StreamReader(("marts", "journeys", "stages"), (STEPS / "journey_scope.sql",), {"unit": "journey"},
                                           reads=("journeys.touches", "stages.event_stages"), in_parts=True),
    "stages.event_stages": StreamReader(("stages",), in_parts=True),
    "stages.funnel_levels": StreamReader(
        ("stages",), (STAGE_STEPS / "funnel_scope.sql",), reads=("stages.event_stages",),
        scope_columns=(("chain_cut_epoch", "double"),),
        rows_from="(scope.chain_cut_epoch is null or epoch({name}.chain_start) >= scope.chain_cut_epoch)",
        sql_files=tuple(STAGE_STEPS / f"funnel_{step}.sql" for step in ("first_level", "next_level", "strict", "any_order"))),
    "stages.funnel_units": StreamReader(("stages", "journeys"), (STEPS / "journey_scope.sql",)),
    "stages.stage_spells": StreamReader(
        ("stages",), (STEPS / "journey_scope.sql", STAGE_STEPS / "spell_scope.sql"), {"unit": "journey"}, also=(_CURRENT_SPELL_HOURS,),
        reads=("stages.event_stages",), in_parts=True,
        scope_columns=(("stage_model", "varchar"), ("person_from_sequence_number", "bigint"), ("person_from_spell_number", "bigint"),
                       ("previous_stage_index", "bigint")),
        rows_from="({name}.stage_model = scope.stage_model and {name}.sequence_number >= case when {name}.unit_type = 'person' "
                  "then scope.person_from_sequence_number else scope.from_sequence_number end)"),
}

#: what a reader's SQL sees of the log: its own changes, one row per person ($all_persons false):
#: person_id, from_sequence_number (rows written again), read_from_sequence_number (rows read)
STREAM_SCOPE = "journeys.stream_scope"


def params(settings: Settings) -> dict:
    j = settings.journeys
    return {
        "session_gap_seconds": j.session_gap_minutes * 60,
        "max_session_seconds": j.max_session_hours * 3600,
        "journey_gap_seconds": j.journey_gap_days * 86400,
    }


def write_reference_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    j = settings.journeys
    write_table(con, "journeys.source_ranks", pl.DataFrame(
        {"source": list(j.source_rank), "source_rank": list(j.source_rank.values())}, schema={"source": pl.String, "source_rank": pl.Int64}))
    write_table(con, "journeys.purchase_activities",
                pl.DataFrame({"activity": sorted(set(j.purchase_activities))}, schema={"activity": pl.String}))


def data_end(con: duckdb.DuckDBPyConnection, settings: Settings) -> dt.datetime | None:
    """The data's end for recency, churn, censoring and open windows: setting marts.as_of, or the
    last event in the customer stream. Resolved once here and bound as $as_of in every model."""
    if settings.marts.as_of is not None:
        return settings.marts.as_of
    return con.execute("select max(occurred_at) from journeys.customer_stream").fetchall()[0][0]


def _fingerprint(name: str, settings: Settings) -> str:
    return incremental.fingerprint([settings.journeys.model_dump_json()], [sql_path("journeys", name), *STEPS.glob("*.sql")])


def build_event_persons(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """journeys.event_persons, for the events identity.pending_changes says may have changed
    person (or every event after a whole identity run or a change of settings or SQL)."""
    model = "journeys.event_persons"
    print_ = _fingerprint("event_persons", settings)
    update = incremental.may_update(con, model, print_, [model]) and not incremental.log_has_everything(con, identity.LOG)
    incremental.forget(con, model)
    logged, read_to = incremental.events_to_compare(con, model)
    for table in ("rebuild_events", "rebuild_sighting_events"):
        con.execute(f"create or replace table journeys.{table} (event_key varchar)")
    figures = {}
    if update:
        create_from_file(con, "journeys.rebuild_events", STEPS / "rebuild_events.sql", {"all_events": logged is None})
        create_from_file(con, "journeys.rebuild_sighting_events", STEPS / "rebuild_sighting_events.sql")
        # the events decided again are what may have changed person, for customer_stream
        incremental.replace_rows(con, model, sql_path("journeys", "event_persons"), {"all_events": False},
                                 "event_key in (select event_key from journeys.rebuild_events)",
                                 also=(*incremental.READ_EVENT_CHANGES,
                                       incremental.log_event_keys("select event_key from journeys.rebuild_events")),
                                 bound={**incremental.read_values(model, read_to), "writer": model, "batch": incremental.next_batch(con)})
        scope = con.execute("select count(*) from journeys.rebuild_events").fetchall()[0][0]
        figures["events_compared"] = incremental.events_compared(con, logged)
    else:
        incremental.log_every_event(con, model)
        scope = build_model(con, "journeys", "event_persons", {"all_events": True})
        incremental.read_event_changes(con, model, read_to)
    con.execute(f"drop table {incremental.LOGGED_EVENTS}")
    incremental.ensure_log(con, identity.LOG)
    con.execute(f"delete from {identity.LOG}")
    for table in ("rebuild_events", "rebuild_sighting_events"):
        con.execute(f"drop table journeys.{table}")
    incremental.record(con, model, print_)
    return {"mode": "incremental" if update else "whole", "events_decided_again": int(scope), **figures}


#: the work tables of an incremental stream build
_STREAM_WORK = ("stream_rebuilds", "rebuild_persons", "stream_suffixes", "customer_stream_suffix", "stream_prefix_updates")


def _update_customer_stream(con: duckdb.DuckDBPyConnection, values: dict, logged: int | None, read_to: int) -> dict:
    """Bring journeys.customer_stream up to date with the persons and events that changed since its
    last build: a person touched only by new events keeps its rows before the first of them and
    has the rest built again (steps/stream_suffix.sql); any other touched person is built again
    whole (customer_stream.sql). Everything is written in one transaction."""
    create_from_file(con, "journeys.stream_rebuilds", STEPS / "stream_rebuilds.sql", {"all_events": logged is None})
    con.execute("create or replace table journeys.rebuild_persons as "
                "select person_id from journeys.stream_rebuilds where from_event_key is null")
    con.execute("create or replace table journeys.stream_suffixes as "
                "select * from journeys.stream_rebuilds where from_event_key is not null")
    create_from_file(con, "journeys.customer_stream_suffix", STEPS / "stream_suffix.sql", values)
    create_from_file(con, "journeys.stream_prefix_updates", STEPS / "stream_prefix_updates.sql")
    whole, continued = con.execute(
        "select count(*) filter (where from_event_key is null), count(*) filter (where from_event_key is not null) "
        "from journeys.stream_rebuilds").fetchall()[0]
    suffix = con.execute("select count(*) from journeys.customer_stream_suffix").fetchall()[0][0]
    rebuilt = incremental.replace_rows(
        con, "journeys.customer_stream", sql_path("journeys", "customer_stream"), {**values, "all_persons": False, "part_from": None, "part_to": None},
        "person_id in (select person_id from journeys.rebuild_persons)", also=(
        # a continued person's old rows from its first new event on: all of them are in its new suffix
        "delete from journeys.customer_stream where event_key in (select event_key from journeys.customer_stream_suffix)",
        """
        update journeys.customer_stream as stream
        set next_channel = updates.next_channel, activity_repeated_at = updates.activity_repeated_at
        from journeys.stream_prefix_updates as updates
        where updates.event_key = stream.event_key
        """,
        "insert into journeys.customer_stream select * from journeys.customer_stream_suffix",
        # what changed, for the models that read the stream (in the same transaction as the change)
        f"""
        insert into {STREAM_LOG}
        select consumers.consumer, changed.person_id, changed.from_sequence_number
        from (
            select person_id, 1 as from_sequence_number from journeys.rebuild_persons
            union all
            select person_id, min(sequence_number) as from_sequence_number from journeys.customer_stream_suffix group by person_id
        ) as changed
        cross join (select unnest($consumers) as consumer) as consumers
        """,
        *incremental.READ_EVENT_CHANGES,
    ), bound={"consumers": list(STREAM_READERS), **incremental.read_values("journeys.customer_stream", read_to)})
    return {"persons_built_again": int(whole + continued), "persons_continued": int(continued), "events_built_again": int(rebuilt + suffix),
            "events_compared": incremental.events_compared(con, logged)}


#: memory a whole build of customer_stream needs per event, in bytes: it is built in parts of the
#: persons (ranges of person ids holding about equal numbers of events, warehouse.build_in_parts)
#: where the events need more than DuckDB's memory limit. Measured at 100M events with a limit of
#: 11.7 GiB: the whole stream spilled 41.3 GiB and ran out of disk after 464 s; a tenth of the
#: persons (10.0M events) built without spilling in 60.4 s, a fifth (20.0M) spilled 0.57 GiB in
#: 66.6 s; 10M events (one part) spill nothing. One part up to about 15M events at that limit.
STREAM_BYTES_PER_EVENT = 800

#: the ranges of person ids the stream's last whole build was built in (the lowest person id of
#: each; one null row: one part), which the readers built in parts (StreamReader.in_parts) use too
STREAM_RANGES = "reference.stream_ranges"


def record_stream_ranges(con: duckdb.DuckDBPyConnection, bounds: list) -> None:
    """Record the bounds (part_bounds; [None]: one part) the stream was built whole in."""
    write_table(con, STREAM_RANGES, pl.DataFrame({"part_from": bounds}, schema={"part_from": pl.String}))


def stream_ranges(con: duckdb.DuckDBPyConnection) -> list:
    """The bounds of the ranges the stream was last built whole in ([None]: one part, or none
    recorded). An incremental update appends its persons' rows after them, so the ranges stay
    a partition of every person id, only less tidily stored."""
    if not table_exists(con, STREAM_RANGES):
        return [None]
    return [row[0] for row in con.execute(f"select part_from from {STREAM_RANGES} order by part_from nulls first").fetchall()] or [None]


def build_customer_stream(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """journeys.customer_stream, for the persons whose events or persons changed since its last
    build (or every person after a change of settings or SQL)."""
    model = "journeys.customer_stream"
    print_ = _fingerprint("customer_stream", settings)
    update = incremental.may_update(con, model, print_, [model])
    incremental.forget(con, model)
    logged, read_to = incremental.events_to_compare(con, model)
    values = params(settings)
    con.execute("create or replace table journeys.rebuild_persons (person_id varchar)")
    if not update or not table_exists(con, STREAM_LOG):
        # before the build: a build interrupted after it still tells every reader to rebuild whole;
        # so does a log that went missing (what the readers had not read yet went with it)
        _ensure_stream_log(con)
        con.execute(f"delete from {STREAM_LOG}")
        con.execute(f"insert into {STREAM_LOG} select unnest($consumers), null, null", {"consumers": list(STREAM_READERS)})
    if update:
        figures = _update_customer_stream(con, values, logged, read_to)
    else:
        staged = con.execute("select count(*) from journeys.event_persons").fetchall()[0][0]
        parts = parts_for(staged, STREAM_BYTES_PER_EVENT, memory_limit_bytes(con))
        bounds = part_bounds(con, "journeys.event_persons", "person_id", parts) if parts > 1 else [None]
        parts = build_in_parts(con, model, sql_path("journeys", "customer_stream"), {**values, "all_persons": True}, bounds)
        record_stream_ranges(con, bounds)
        events = con.execute(f"select count(*) from {model}").fetchall()[0][0]
        # each person's stream has exactly one first event: a filter, not a distinct count of
        # every event's person id (0.25 s at 10M events)
        persons = con.execute("select count(*) from journeys.customer_stream where sequence_number = 1").fetchall()[0][0]
        incremental.read_event_changes(con, model, read_to)
        figures = {"persons_built_again": int(persons), "persons_continued": 0, "events_built_again": int(events), "parts": parts}
    con.execute(f"drop table {incremental.LOGGED_EVENTS}")
    for table in _STREAM_WORK:
        con.execute(f"drop table if exists journeys.{table}")
    incremental.record(con, model, print_)
    return {"mode": "incremental" if update else "whole", **figures}


def build_journey_model(con: duckdb.DuckDBPyConnection, name: str, settings: Settings) -> dict:
    """Build journeys.<name>; returns figures for the run's metadata (mode, scope)."""
    write_reference_tables(con, settings)
    if name == "event_persons":
        return build_event_persons(con, settings)
    return build_customer_stream(con, settings)


def _ensure_stream_log(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create table if not exists {STREAM_LOG} (consumer varchar, person_id varchar, from_sequence_number bigint)")


#: writes a stream reader built in steps (stages.build_funnel_levels): given the values (with
#: $all_persons) and, for an incremental build, the condition of the rows it replaces and the
#: statements to run in the same transaction with their parameters (None, (), {}: a whole build);
#: returns how many rows it wrote
StepWriter = Callable[[duckdb.DuckDBPyConnection, dict, str | None, tuple[str, ...], dict], int]


def build_stream_consumer(con: duckdb.DuckDBPyConnection, qualified: str, values: dict, settings: Settings,
                          write: StepWriter | None = None, can_update: bool = True) -> dict:
    """Build a model that reads journeys.customer_stream (one of STREAM_READERS) for what changed
    in the stream since its last build, from journeys.stream_changes: the changed persons' rows
    from the first changed one on are deleted and built again, in one transaction that also
    empties the model's log (and runs the reader's `also`). Whole when the model was never built,
    its settings or SQL changed, the log is missing or the stream was rebuilt whole. Its SQL reads
    the changed part as journeys.stream_scope with $all_persons false: per person, the rows it
    writes again (from_sequence_number on) and reads (read_from_sequence_number on; the same unless
    the reader's scope step, a SELECT over the stream's scope and the model's last build, moves
    them earlier). A model built in steps brings its own `write`; `can_update` False builds it
    whole."""
    reader = STREAM_READERS[qualified]
    if reader.in_parts:
        values = {**values, "part_from": None, "part_to": None}
    settings_read = [getattr(settings, section).model_dump_json() for section in reader.settings_read]
    layer, name = qualified.split(".")
    path = sql_path(layer, name)
    read_paths = [sql_path(*model.split(".")) for model in reader.reads]
    print_ = incremental.fingerprint(settings_read, [*(reader.sql_files or [path]), *reader.scope_steps,
                                                     *read_paths])
    # no log: nothing tells what changed since this model's last build
    logged = table_exists(con, STREAM_LOG)
    _ensure_stream_log(con)
    everything = con.execute(f"select count(*) from {STREAM_LOG} where consumer = $model and person_id is null",
                             {"model": qualified}).fetchall()[0][0]
    update = can_update and logged and not everything and incremental.may_update(con, qualified, print_, [qualified])
    incremental.forget(con, qualified)
    con.execute(f"create or replace table {STREAM_SCOPE} as select person_id, min(from_sequence_number) as from_sequence_number, "
                f"min(from_sequence_number) as read_from_sequence_number "
                f"from {STREAM_LOG} where consumer = $model and person_id is not null and $update group by person_id",
                {"model": qualified, "update": update})
    for step in reader.scope_steps if update else ():
        create_from_file(con, f"{STREAM_SCOPE}_moved", step, {**values, **reader.scope_values})
        # renamed, not copied (10M events, one day: 0.05-0.10 s a copy, seven a run)
        con.execute(f"drop table {STREAM_SCOPE}")
        con.execute(f"alter table {STREAM_SCOPE}_moved rename to {STREAM_SCOPE.split('.')[1]}")
    if not update:
        for column, type_ in reader.scope_columns:
            con.execute(f"alter table {STREAM_SCOPE} add column {column} {type_}")
    # a scope step may give a person one row per something (stage_spells: per stage model)
    persons = con.execute(f"select count(distinct person_id) from {STREAM_SCOPE}").fetchall()[0][0]
    if update:
        where = (f"exists (select 1 from {STREAM_SCOPE} as scope where scope.person_id = {name}.person_id "
                 f"and {reader.rows_from.format(name=name)})")
        also, bound = (*reader.also, f"delete from {STREAM_LOG} where consumer = $model"), {**values, "model": qualified}
        if write:
            rows = write(con, {**values, "all_persons": False}, where, also, bound)
        else:
            rows = incremental.replace_rows(con, qualified, path, {**values, "all_persons": False}, where, also=also, bound=bound)
    else:
        if write:
            rows = write(con, {**values, "all_persons": True}, None, (), {})
        elif reader.in_parts:
            build_in_parts(con, qualified, path, {**values, "all_persons": True}, stream_ranges(con))
            rows = con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
        else:
            rows = build_model(con, layer, name, {**values, "all_persons": True})
        con.execute(f"delete from {STREAM_LOG} where consumer = $model", {"model": qualified})
    con.execute(f"drop table {STREAM_SCOPE}")
    incremental.record(con, qualified, print_)
    if not update:
        return {"mode": "whole", "rows_built_again": int(rows)}
    return {"mode": "incremental", "persons_built_again": int(persons), "rows_built_again": int(rows)}

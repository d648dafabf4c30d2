"""Writing a delivery into the warehouse and building the staging models from sql/staging/.

Per delivery (source x date) the loader replaces that slice of the staged tables, the quarantine
and the file register, and notes the slice in staging.slice_changes, once for each of its
readers; the staging models are then rebuilt from all staged rows, which is what makes the result
independent of the order deliveries arrive in -- but for staging.duplicate_rows, which ranks again
only the keys with a copy in a slice written since its last build or a copy removed then, and
staging.events, which writes again only the events with a copy in such a slice (docs/performance.md,
"Incremental runs").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import polars as pl

from journey_analytics import incremental
from journey_analytics.ingest.landing import BATCH_BYTES, CHUNK_BYTES, ENTITIES, SOURCES, SourceLoad, batches, load_files, table_name
from journey_analytics.schemas import COLUMNS, LANDED_FILE_COLUMNS, LOAD_ERROR_COLUMNS, QUARANTINE_COLUMNS
from journey_analytics.settings import Settings
from journey_analytics.warehouse import SQL_DIR, build_model, compact_tables, create_from_file, ensure_table, fetch, sql_path, timezone_periods, write_table

LANDED_FILES = "raw.landed_files"
REJECTED_ROWS = "quarantine.rejected_rows"
LOAD_ERRORS = "quarantine.load_errors"
#: per reader, the slices (source x delivery date) written since the reader was last built
SLICE_CHANGES = "staging.slice_changes"
#: the log's name before readers were told apart (dropped: each reader's first build is whole)
_OLD_SLICE_LOG = "staging.written_slices"
EVENTS = "staging.events"
DUPLICATES = "staging.duplicate_rows"
#: the readers of staging.slice_changes
SLICE_READERS = (DUPLICATES, EVENTS)
#: per reader, the contacts whose snapshot rows a delivery wrote or removed since the reader was
#: last built: only their versions, latest versions and lifecycle events are worked out again
CHANGED_CONTACTS = "staging.changed_contacts"
CONTACT_VERSIONS = "staging.contact_versions"
LATEST_CONTACTS = "staging.contacts"
#: the readers of staging.changed_contacts
CONTACT_READERS = (CONTACT_VERSIONS, LATEST_CONTACTS, EVENTS)
CONTACTS = "staging.stg_crm__contacts"
#: a reader's build has read what the change logs held for it (bound: $reader); a reader of one
#: log only has no rows in the other
READ_CHANGES = tuple(f"delete from {log} where reader = $reader" for log in (SLICE_CHANGES, CHANGED_CONTACTS))
EVENTS_SCOPE = SQL_DIR / "staging" / "steps" / "events_scope.sql"
DERIVED_CHANGES = SQL_DIR / "staging" / "steps" / "derived_changes.sql"
#: the view of every staged row with its duplicate key, which staging.duplicate_rows reads
KEYED_ROWS = SQL_DIR / "staging" / "steps" / "keyed_rows.sql"
#: the events staging.events derives from other tables (store receipts and visits, CRM lifecycle
#: events), told apart as sql/staging/events.sql says
DERIVED = "source = 'store' or source_format = 'crm_contacts'"

#: staging models in build order (each is sql/staging/<name>.sql)
STAGING_MODELS = ("duplicate_rows", "stores", "timezone_periods", "store_times", "contact_versions", "contacts", "events", "load_audit")


def staged_tables() -> dict[str, str]:
    """staged table (schema-qualified) -> its layout name in schemas.COLUMNS."""
    return {f"staging.{table_name(s, e)}": kind for s in SOURCES for e, kind in ENTITIES[s].items()}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every table the staging SQL reads exists, even for a source that never delivered."""
    for qualified, kind in staged_tables().items():
        ensure_table(con, qualified, COLUMNS[kind])
    ensure_table(con, LANDED_FILES, LANDED_FILE_COLUMNS)
    ensure_table(con, REJECTED_ROWS, QUARANTINE_COLUMNS)
    ensure_table(con, LOAD_ERRORS, LOAD_ERROR_COLUMNS)
    con.execute(f"drop table if exists {_OLD_SLICE_LOG}")
    con.execute(f"create table if not exists {SLICE_CHANGES} (reader varchar, source varchar, delivery_date date)")
    con.execute(f"create table if not exists {CHANGED_CONTACTS} (reader varchar, contact_id varchar)")


@dataclass(frozen=True)
class BatchSummary:
    """What one batch of deliveries wrote: its dates and counts. The batch's frames are let go once
    written, so a source's whole history is never held in Python memory."""

    delivery_dates: list[dt.date]
    files: int
    staged: dict[str, int]  # entity -> rows staged
    quarantined: int
    load_errors: int

    def adding(self, load: SourceLoad) -> BatchSummary:
        """This summary with one more chunk's load counted in."""
        return BatchSummary(self.delivery_dates, self.files + load.landed_files.height,
                            {e: n + load.staged[e].height for e, n in self.staged.items()},
                            self.quarantined + load.quarantine.height, self.load_errors + load.load_errors.height)


def write_batch(con: duckdb.DuckDBPyConnection, source: str, dates: list[dt.date], loads: Iterable[SourceLoad]) -> BatchSummary:
    """Replace everything one source delivered on `dates`, in one transaction (idempotent: delete
    those slices, then insert the loads), and note what changed for the incremental builds: the
    slices for each reader of staging.slice_changes, and the contacts of the snapshot rows removed
    and written in staging.changed_contacts. `loads` are the batch's chunks, read as they are
    written (landing.batches): each one's frames are let go before the next is read, so memory
    holds one chunk whatever the size of a day's delivery. What reads them must not use `con`
    (ingest gives them a cursor of their own): a statement that fails on `con`, as DuckDB's JSON
    reader does on a broken file before the record-by-record reader takes over, would abort this
    transaction."""
    tables = [f"staging.{table_name(source, entity)}" for entity in ENTITIES[source]]
    side = [REJECTED_ROWS, LOAD_ERRORS, LANDED_FILES]
    # the contacts of the snapshot rows removed, and then of those written
    note_contacts = (f"insert into {CHANGED_CONTACTS} select readers.reader, rows.contact_id "
                     f"from (select distinct contact_id from {CONTACTS} where list_contains($dates, _delivery_date)) as rows "
                     "cross join unnest($readers) as readers(reader)")
    noted = {"dates": dates, "readers": list(CONTACT_READERS)}
    summary = BatchSummary(dates, 0, {entity: 0 for entity in ENTITIES[source]}, 0, 0)
    con.execute("begin transaction")
    try:
        if CONTACTS in tables:
            con.execute(note_contacts, noted)
        for qualified in [*tables, *side]:
            where, values = ("", {}) if qualified in tables else (" and source = $source", {"source": source})
            con.execute(f"delete from {qualified} where list_contains($dates, _delivery_date){where}", {"dates": dates, **values})
        for load in loads:
            frames = {**{f"staging.{table_name(source, e)}": frame for e, frame in load.staged.items()},
                      REJECTED_ROWS: load.quarantine, LOAD_ERRORS: load.load_errors, LANDED_FILES: load.landed_files}
            _insert_frames(con, frames)
            summary = summary.adding(load)
            del load, frames  # before the next chunk is read
        if CONTACTS in tables:
            con.execute(note_contacts, noted)
        con.execute(f"insert into {SLICE_CHANGES} select readers.reader, $source, dates.delivery_date "
                    "from unnest($readers) as readers(reader) cross join unnest($dates) as dates(delivery_date)",
                    {"readers": list(SLICE_READERS), "source": source, "dates": dates})
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    compact_tables(con, [*tables, *side])
    return summary


def _insert_frames(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame]) -> None:
    """Append each frame to its table (schema.table -> frame), by column name."""
    for i, (qualified, frame) in enumerate(frames.items()):
        if not frame.height:
            continue
        name = f"_load_{i}"
        con.register(name, frame.to_arrow())
        try:
            columns = ", ".join(frame.columns)
            con.execute(f"insert into {qualified} ({columns}) select {columns} from {name}")
        finally:
            con.unregister(name)


def ingest(con: duckdb.DuckDBPyConnection, source: str, dates: list[dt.date], settings: Settings,
           batch_bytes: int = BATCH_BYTES, chunk_bytes: int = CHUNK_BYTES) -> list[BatchSummary]:
    """Load and write one source's deliveries in batches of whole dates, each read in chunks of its
    files (bounded memory, landing.batches); returns what each batch wrote, in order. Each chunk's
    frames are let go as soon as they are written: holding them (as this did until session 14) kept
    a source's whole history in Python memory (10M events, web: 43.9-44.7 s and 12.6-12.8 GB at
    the peak, then 36.8-39.4 s and 7.1 GB)."""
    ensure_tables(con)
    reader = con.cursor()  # parses JSON for load_files, outside write_batch's transaction
    try:
        return [
            # dates without files still have their old slices removed
            write_batch(con, source, days, (load_files(reader, source, files, settings) for files in chunked))
            for days, chunked in batches(settings.landing_dir, source, dates, batch_bytes, chunk_bytes)
        ]
    finally:
        reader.close()


def build_timezone_periods(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    names = {settings.store.default_timezone}
    for table in ("staging.stg_store__stores", "staging.stg_store__transactions", "staging.stg_store__visits"):
        names.update(r[0] for r in con.execute(f"select distinct timezone from {table} where timezone is not null").fetchall())
    write_table(con, "staging.timezone_periods", timezone_periods(sorted(names)))
    return con.execute("select count(*) from staging.timezone_periods").fetchall()[0][0]


def params(settings: Settings) -> dict:
    """Every value the staging SQL binds."""
    return {"default_timezone": settings.store.default_timezone}


def build_events(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """staging.events: incrementally when its last build used the same SQL and settings -- the events
    with a copy in a slice written since then (steps/events_scope.sql) and the derived events whose
    rows changed (steps/derived_changes.sql; of the CRM lifecycle events, only those of the contacts
    in staging.changed_contacts are worked out again) are written again, the others kept -- else whole.
    Empties its rows of staging.slice_changes and staging.changed_contacts, and logs the keys written
    again or removed for its readers (everything, when whole), in the same transaction. Returns the
    mode and the rows written."""
    print_ = incremental.fingerprint([str(sorted(params(settings).items()))],
                                     [sql_path("staging", "events"), EVENTS_SCOPE, DERIVED_CHANGES])
    update = incremental.may_update(con, EVENTS, print_, [EVENTS, SLICE_CHANGES, CHANGED_CONTACTS])
    incremental.forget(con, EVENTS)
    figures = {}
    if update:
        batch = incremental.next_batch(con)
        figures["contacts_worked_out_again"] = _changed_contacts(con, EVENTS)
        create_from_file(con, "staging.events_scope", EVENTS_SCOPE, {"reader": EVENTS})
        rewritten = ("event_key in (select event_key from staging.events_scope) "
                     "or event_key in (select event_key from staging.derived_changes)")
        written = incremental.replace_rows(
            con, EVENTS, sql_path("staging", "events"), {**params(settings), "all_events": False, "reader": EVENTS}, rewritten,
            prepare=(
                # every derived event is built again; only those that changed are written
                f"create or replace table staging.derived_changes as\n{DERIVED_CHANGES.read_text()}",
                f"delete from {EVENTS}_rebuilt where ({DERIVED}) and event_key not in (select event_key from staging.derived_changes)",
                # the keys of the rows replaced, for the log (the rows are gone once the log is written)
                f"create or replace table staging.events_replaced as select event_key from {EVENTS} where {rewritten}",
            ),
            also=(*READ_CHANGES, incremental.log_event_keys("select event_key from staging.events_replaced union "
                                                            "select event_key from staging.events_rebuilt")),
            bound={"writer": EVENTS, "batch": batch, "reader": EVENTS})
    else:
        # before the build: one interrupted after it still tells every reader that anything changed
        incremental.log_every_event(con, EVENTS)
        con.execute("create or replace table staging.events_scope (event_key varchar)")  # the SQL names it
        written = build_model(con, "staging", "events", {**params(settings), "all_events": True, "reader": EVENTS})
        _read_changes(con, EVENTS)
    for table in ("events_scope", "events_replaced", "derived_changes"):
        con.execute(f"drop table if exists staging.{table}")
    incremental.record(con, EVENTS, print_)
    return {"mode": "incremental" if update else "whole", "rows_written": int(written), **figures}


def _read_changes(con: duckdb.DuckDBPyConnection, reader: str) -> None:
    for statement in READ_CHANGES:
        con.execute(statement, {"reader": reader})


def _changed_contacts(con: duckdb.DuckDBPyConnection, reader: str) -> int:
    return con.execute(f"select count(distinct contact_id) from {CHANGED_CONTACTS} where reader = $reader",
                       {"reader": reader}).fetchall()[0][0]


def build_contact_model(con: duckdb.DuckDBPyConnection, qualified: str) -> dict:
    """staging.contact_versions or staging.contacts: when its last build used the same SQL, only the
    rows of the contacts whose snapshot rows a delivery wrote or removed since then
    (staging.changed_contacts) are built again -- any other contact has the same rows, so the same
    versions -- else every contact. Empties its rows of staging.changed_contacts in the same
    transaction."""
    layer, name = qualified.split(".")
    path = sql_path(layer, name)
    print_ = incremental.fingerprint([], [path])
    update = incremental.may_update(con, qualified, print_, [qualified, CHANGED_CONTACTS])
    incremental.forget(con, qualified)
    values = {"all_contacts": not update, "reader": qualified}
    if update:
        contacts = _changed_contacts(con, qualified)
        rows = incremental.replace_rows(
            con, qualified, path, values,
            f"contact_id in (select contact_id from {CHANGED_CONTACTS} where reader = $reader)", also=READ_CHANGES, bound=values)
    else:
        rows = build_model(con, layer, name, values)
        _read_changes(con, qualified)
    incremental.record(con, qualified, print_)
    if not update:
        return {"mode": "whole", "rows": int(rows)}
    return {"mode": "incremental", "contacts_worked_out_again": int(contacts), "rows": int(rows)}


def build_duplicate_rows(con: duckdb.DuckDBPyConnection) -> dict:
    """staging.duplicate_rows: when its last build used the same SQL, ranking again only the keys
    with a copy in a slice written since then or a copy at that build (sql/staging/duplicate_rows.sql),
    else every key; written whole either way. Then empties its rows of staging.slice_changes."""
    print_ = incremental.fingerprint([], [sql_path("staging", "duplicate_rows"), KEYED_ROWS])
    update = incremental.may_update(con, DUPLICATES, print_, [DUPLICATES, SLICE_CHANGES])
    incremental.forget(con, DUPLICATES)
    con.execute(f"create or replace view staging.keyed_rows as\n{KEYED_ROWS.read_text()}")
    # a work table the SQL reads (empty for a whole build): the keys that had copies at the last build
    if update:
        con.execute(f"create or replace table staging.duplicates_before as select distinct dedupe_key from {DUPLICATES}")
    else:
        con.execute("create or replace table staging.duplicates_before (dedupe_key varchar)")
    rows = build_model(con, "staging", "duplicate_rows", {"all_keys": not update, "reader": DUPLICATES})
    # after the build: one interrupted before this point reads the same slices again next time
    _read_changes(con, DUPLICATES)
    con.execute("drop table staging.duplicates_before")
    incremental.record(con, DUPLICATES, print_)
    return {"mode": "incremental" if update else "whole", "rows": int(rows)}


def build_staging_model(con: duckdb.DuckDBPyConnection, name: str, settings: Settings) -> int | dict:
    ensure_tables(con)
    if name == "timezone_periods":
        return build_timezone_periods(con, settings)
    if name == "duplicate_rows":
        return build_duplicate_rows(con)
    if f"staging.{name}" in (CONTACT_VERSIONS, LATEST_CONTACTS):
        return build_contact_model(con, f"staging.{name}")
    if name == "events":
        return build_events(con, settings)
    return build_model(con, "staging", name, params(settings))


def build_staging(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int | dict]:
    return {name: build_staging_model(con, name, settings) for name in STAGING_MODELS}


def unbalanced_files(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The audit rows breaking conservation (empty when every row is accounted for)."""
    return fetch(
        con,
        "select source, _source_file, rows_read, rows_staged, rows_quarantined, rows_duplicate "
        "from staging.load_audit where not is_balanced order by _source_file",
    )


def source_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per source: files, rows read, staged, quarantined, duplicates removed, load errors."""
    return fetch(
        con,
        """
        select source, count(*) as files, cast(sum(rows_read) as bigint) as rows_read,
               cast(sum(rows_staged) as bigint) as rows_staged, cast(sum(rows_quarantined) as bigint) as rows_quarantined,
               cast(sum(rows_duplicate) as bigint) as rows_duplicate, cast(sum(load_errors) as bigint) as load_errors,
               bool_and(is_balanced) as is_balanced
        from staging.load_audit group by source order by source
        """,
    )

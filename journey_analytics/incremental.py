"""Incremental builds: when a model may update only what new data changed, and the change log
that passes what changed from one model to the next.

A model built incrementally records a fingerprint of everything its result depends on besides
the data -- its settings and the text of its SQL. When the fingerprint differs from the one its
last build recorded (a setting or the code changed), or the model has no previous build, it is
rebuilt whole. Otherwise it works out what the new data changed and rebuilds only that; a test
(tests/sql/test_incremental.py) checks that the result equals a whole rebuild.
docs/performance.md ("Incremental runs") says what each model redoes.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import duckdb

from journey_analytics.warehouse import bind, compact_tables, create_from_file, table_exists

STATE = "reference.build_fingerprints"
ALL = "all"  # a change-log row of this kind: everything changed (the producer was rebuilt whole)


def fingerprint(parts: list[str], files: list[Path]) -> str:
    """SHA-256 over settings (as text) and the files whose text defines the model."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    for path in sorted(files):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create table if not exists {STATE} (model varchar, fingerprint varchar)")


def may_update(con: duckdb.DuckDBPyConnection, model: str, print_: str, tables: list[str]) -> bool:
    """True when `model` may be updated incrementally: its tables exist and its last build
    recorded the same fingerprint."""
    if not all(table_exists(con, t) for t in tables):
        return False
    _ensure_state(con)
    rows = con.execute(f"select fingerprint from {STATE} where model = $model", {"model": model}).fetchall()
    return bool(rows) and rows[0][0] == print_


def record(con: duckdb.DuckDBPyConnection, model: str, print_: str) -> None:
    _ensure_state(con)
    con.execute(f"delete from {STATE} where model = $model", {"model": model})
    con.execute(f"insert into {STATE} values ($model, $print)", {"model": model, "print": print_})


def forget(con: duckdb.DuckDBPyConnection, model: str) -> None:
    """The next build of `model` is a whole one (called before a model's tables are replaced, so an
    interrupted build never leaves a fingerprint that vouches for half-written tables)."""
    _ensure_state(con)
    con.execute(f"delete from {STATE} where model = $model", {"model": model})


def ensure_log(con: duckdb.DuckDBPyConnection, log: str) -> None:
    con.execute(f"create table if not exists {log} (kind varchar, value varchar)")


def log_everything(con: duckdb.DuckDBPyConnection, log: str) -> None:
    """Tell the consumer of `log` that everything changed."""
    ensure_log(con, log)
    con.execute(f"insert into {log} values ($kind, null)", {"kind": ALL})


def log_has_everything(con: duckdb.DuckDBPyConnection, log: str) -> bool:
    if not table_exists(con, log):
        return True  # no producer has logged yet: nothing tells what changed
    return bool(con.execute(f"select count(*) from {log} where kind = $kind", {"kind": ALL}).fetchall()[0][0])


def replace_rows(con: duckdb.DuckDBPyConnection, qualified: str, path: Path, values: dict, where: str,
                 also: tuple[str, ...] = (), bound: dict | None = None, prepare: tuple[str, ...] = ()) -> int:
    """Replace the rows of `qualified` matching `where` with the model's rows for them (the SELECT
    in `path`, bound to `values`, builds only those, into `qualified`_rebuilt; the statements
    `prepare` run next, before anything is replaced, bound to `values` too), and run the statements
    `also` (with the parameters `bound` they use) with them, in one transaction; returns how many
    rows it wrote."""
    create_from_file(con, f"{qualified}_rebuilt", path, values)
    for statement in prepare:
        con.execute(statement, bind(statement, values))
    written = con.execute(f"select count(*) from {qualified}_rebuilt").fetchall()[0][0]
    with replacing(con, qualified, where, also, bound):
        con.execute(f"insert into {qualified} select * from {qualified}_rebuilt")
    con.execute(f"drop table {qualified}_rebuilt")
    return written


@contextmanager
def replacing(con: duckdb.DuckDBPyConnection, qualified: str, where: str, also: tuple[str, ...] = (), bound: dict | None = None):
    """One transaction that deletes the rows of `qualified` matching `where`, runs the body (which
    writes their replacements), then the statements `also` (`where` and these with the parameters
    `bound` they use); then compacts `qualified` if its deleted rows call for it
    (warehouse.compact_tables)."""
    con.execute("begin transaction")
    delete = f"delete from {qualified} where {where}"
    con.execute(delete, bind(delete, bound or {}))
    yield
    for statement in also:
        con.execute(statement, bind(statement, bound or {}))
    con.execute("commit")
    compact_tables(con, [qualified])


#: The staged events whose row or person changed (docs/performance.md, "Incremental runs"): each
#: build of a writer appends the keys it wrote again or removed under a new batch number (a null
#: key: everything may have changed -- the writer was built whole); each reader remembers the last
#: batch it read (EVENT_READS) and compares only the events of its writers' later batches with its
#: last build, instead of every event. Batches every reader has read are deleted.
EVENT_CHANGES = "staging.event_changes"
EVENT_READS = "staging.event_change_reads"
#: reader -> the writers whose keys it reads: staging.events logs the keys it wrote again or
#: removed; event_persons the events it decided again
EVENT_CHANGE_WRITERS = {
    "identity": ("staging.events",),
    "journeys.event_persons": ("staging.events",),
    "journeys.customer_stream": ("staging.events", "journeys.event_persons"),
}
#: the keys a reader's SQL compares (made by events_to_compare)
LOGGED_EVENTS = "staging.logged_events"


def ensure_event_changes(con: duckdb.DuckDBPyConnection) -> None:
    """The log and the readers' positions exist; created now (or one of them lost), they tell every
    reader that anything may have changed (what changed before is not in the log)."""
    if table_exists(con, EVENT_CHANGES) and table_exists(con, EVENT_READS):
        return
    con.execute(f"create or replace table {EVENT_CHANGES} (writer varchar, batch bigint, event_key varchar)")
    con.execute(f"create or replace table {EVENT_READS} (reader varchar, batch bigint)")
    con.execute(f"insert into {EVENT_READS} select unnest($readers), 0", {"readers": list(EVENT_CHANGE_WRITERS)})
    for writer in sorted({w for writers in EVENT_CHANGE_WRITERS.values() for w in writers}):
        log_every_event(con, writer)


def next_batch(con: duckdb.DuckDBPyConnection) -> int:
    """The batch number of a writer's next log entry (never one a reader has already passed)."""
    ensure_event_changes(con)
    return con.execute(f"select greatest(coalesce((select max(batch) from {EVENT_CHANGES}), 0), "
                       f"coalesce((select max(batch) from {EVENT_READS}), 0)) + 1").fetchall()[0][0]


#: logs the keys the query in it selects (one column, event_key) as batch $batch of writer $writer
#: (run in the transaction that writes them)
def log_event_keys(keys: str) -> str:
    return f"insert into {EVENT_CHANGES} select $writer, $batch, changed.event_key from ({keys}) as changed"


def log_every_event(con: duckdb.DuckDBPyConnection, writer: str) -> None:
    """Tell the readers of `writer` that any event may have changed."""
    ensure_event_changes(con)
    con.execute(f"insert into {EVENT_CHANGES} values ($writer, $batch, null)", {"writer": writer, "batch": next_batch(con)})


def events_to_compare(con: duckdb.DuckDBPyConnection, reader: str) -> tuple[int | None, int]:
    """LOGGED_EVENTS: the distinct events `reader`'s writers logged since it last read; returns
    their number, or None when it must compare every event (a batch says anything may have
    changed), and the last batch read (for read_event_changes)."""
    ensure_event_changes(con)
    read_to = next_batch(con) - 1
    read_from = con.execute(f"select max(batch) from {EVENT_READS} where reader = $reader", {"reader": reader}).fetchall()[0][0]
    values = {"writers": list(EVENT_CHANGE_WRITERS[reader]), "read_from": read_from or 0, "read_to": read_to}
    pending = f"from {EVENT_CHANGES} where list_contains($writers, writer) and batch > $read_from and batch <= $read_to"
    everything = con.execute(f"select count(*) {pending} and event_key is null", values).fetchall()[0][0]
    con.execute(f"create or replace table {LOGGED_EVENTS} as select distinct event_key {pending} and event_key is not null", values)
    if everything or read_from is None:  # no position: it never read the log, which may have lost batches since
        return None, read_to
    return con.execute(f"select count(*) from {LOGGED_EVENTS}").fetchall()[0][0], read_to


#: the statements that record that $reader has read the log up to batch $read_to, delete the
#: batches every reader of their writer has read, and, once the log is empty, set every position
#: back to 0 (so a warehouse whose readers are all up to date holds the same log however many runs
#: led there); run in the transaction that writes what the reader built
READ_EVENT_CHANGES = (
    f"delete from {EVENT_READS} where reader = $reader",
    f"insert into {EVENT_READS} values ($reader, $read_to)",
    f"""delete from {EVENT_CHANGES} as changes where changes.batch <= (
        select min(reads.batch) from {EVENT_READS} as reads
        inner join (select unnest($pair_readers) as reader, unnest($pair_writers) as writer) as pairs on pairs.reader = reads.reader
        where pairs.writer = changes.writer)""",
    f"update {EVENT_READS} set batch = 0 where not exists (select 1 from {EVENT_CHANGES})",
)


def read_values(reader: str, read_to: int) -> dict:
    """The parameters of READ_EVENT_CHANGES."""
    pairs = [(r, w) for r, writers in EVENT_CHANGE_WRITERS.items() for w in writers]
    return {"reader": reader, "read_to": read_to, "pair_readers": [r for r, _ in pairs], "pair_writers": [w for _, w in pairs]}


def read_event_changes(con: duckdb.DuckDBPyConnection, reader: str, read_to: int) -> None:
    for statement in READ_EVENT_CHANGES:
        con.execute(statement, bind(statement, read_values(reader, read_to)))


def events_compared(con: duckdb.DuckDBPyConnection, logged: int | None) -> int:
    """For a reader's figures: the events it compared -- those logged, or every staged event."""
    return logged if logged is not None else con.execute("select count(*) from staging.events").fetchall()[0][0]

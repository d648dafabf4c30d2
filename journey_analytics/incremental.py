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
from pathlib import Path

import duckdb

from journey_analytics.warehouse import bind, create_from_file, table_exists

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
                 also: tuple[str, ...] = (), bound: dict | None = None) -> int:
    """Replace the rows of `qualified` matching `where` with the model's rows for them (the SELECT
    in `path`, bound to `values`, builds only those), and run the statements `also` (with the
    parameters `bound` they use) with them, in one transaction; returns how many rows the model
    wrote."""
    create_from_file(con, f"{qualified}_rebuilt", path, values)
    written = con.execute(f"select count(*) from {qualified}_rebuilt").fetchall()[0][0]
    con.execute("begin transaction")
    con.execute(f"delete from {qualified} where {where}")
    con.execute(f"insert into {qualified} select * from {qualified}_rebuilt")
    for statement in also:
        con.execute(statement, bind(statement, bound or {}))
    con.execute("commit")
    con.execute(f"drop table {qualified}_rebuilt")
    return written


#: The staged events whose row or person changed since each model that compares events last read
#: them (docs/performance.md, "Incremental runs"): one row per reader and event key; a null key --
#: everything may have changed (the writer was built whole). staging.events writes the keys it
#: wrote again or removed, for every reader; event_persons the keys it decided again, for
#: customer_stream. A reader compares only the logged events with its last build, instead of
#: every event, and empties its rows once it has read them.
EVENT_CHANGES = "staging.event_changes"
EVENT_CHANGE_READERS = ("identity", "journeys.event_persons", "journeys.customer_stream")


def ensure_event_changes(con: duckdb.DuckDBPyConnection) -> None:
    """The log exists; created now, it tells every reader that anything may have changed (what
    changed before it existed is not in it)."""
    if not table_exists(con, EVENT_CHANGES):
        con.execute(f"create table {EVENT_CHANGES} (reader varchar, event_key varchar)")
        log_every_event(con, EVENT_CHANGE_READERS)


def log_event_keys(keys: str) -> str:
    """The statement that logs the event keys the query `keys` (one column, event_key) selects for
    the readers bound as $readers (run in the transaction that writes them)."""
    return (f"insert into {EVENT_CHANGES} select readers.reader, changed.event_key from ({keys}) as changed "
            "cross join (select unnest($readers) as reader) as readers")


def log_every_event(con: duckdb.DuckDBPyConnection, readers: tuple[str, ...]) -> None:
    """Tell `readers` that any event may have changed."""
    ensure_event_changes(con)
    con.execute(f"insert into {EVENT_CHANGES} select unnest($readers), null", {"readers": list(readers)})


def event_changes_to_read(con: duckdb.DuckDBPyConnection, reader: str) -> int | None:
    """How many events the log names for `reader` (distinct keys), or None when it must compare
    every event: the log says anything may have changed."""
    ensure_event_changes(con)
    everything, logged = con.execute(
        f"select count(*) filter (where event_key is null), count(distinct event_key) from {EVENT_CHANGES} where reader = $reader",
        {"reader": reader}).fetchall()[0]
    return None if everything else logged


def events_compared(con: duckdb.DuckDBPyConnection, logged: int | None) -> int:
    """For a reader's figures: the events it compared -- those logged, or every staged event."""
    return logged if logged is not None else con.execute("select count(*) from staging.events").fetchall()[0][0]


#: empties $reader's rows of the log, once it has read them
FORGET_EVENT_CHANGES = f"delete from {EVENT_CHANGES} where reader = $reader"

"""The DuckDB warehouse: connecting, replacing a delivery's rows, and building SQL models.

Layers are schemas: raw, staging, quarantine (and later identity, journeys, stages, marts).
Python never pastes values into SQL: models in sql/<layer>/<table>.sql are plain SELECTs whose
values are bound as `$name` parameters; table names come from this code, never from input.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import re
import zoneinfo
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from journey_analytics.settings import PROJECT_ROOT, Settings

SQL_DIR = PROJECT_ROOT / "sql"
SCHEMAS = ("raw", "staging", "quarantine", "reference", "identity", "journeys", "stages", "marts")
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


#: rows per row group: DuckDB's default, which the warehouse file is created with
ROW_GROUP_ROWS = 122_880
#: compact_tables writes a table again once its deleted rows are this share of the rows it stores
#: (and at least a row group's worth)
COMPACT_DEAD_SHARE = 0.25


def connection_config(settings: Settings) -> dict:
    """DuckDB settings that bound memory (a memory limit and a folder to spill to) and leave the
    rows deleted from a table to compact_tables: by default DuckDB vacuums at every checkpoint,
    rewriting the row groups of each changed table that has deleted rows. A daily run deletes a few
    per cent of the rows of the tables it updates, spread over all their row groups, so each
    checkpoint rewrote much of them to save one or two row groups (10M events, one day's run: about
    10 of its 110 s; docs/performance.md, "Deleted rows")."""
    settings.duckdb_temp_dir.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": settings.duckdb_memory_limit, "temp_directory": str(settings.duckdb_temp_dir),
              "max_vacuum_tasks": 0}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    return config


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, name: str = "_frame"):
    """A polars frame visible to SQL under `name` for the duration of the block."""
    con.register(name, frame.to_arrow())
    try:
        yield name
    finally:
        con.unregister(name)


def write_table(con: duckdb.DuckDBPyConnection, qualified: str, frame: pl.DataFrame) -> None:
    """`create or replace table qualified` with a frame's rows (reference tables built from settings)."""
    with registered(con, frame) as name:
        con.execute(f"create or replace table {qualified} as select * from {name}")


@contextmanager
def connect(settings: Settings, read_only: bool = False):
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path), read_only=read_only, config=connection_config(settings))
    try:
        if not read_only:
            ensure_schemas(con)
        yield con
    finally:
        con.close()


def compact_tables(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> list[str]:
    """Write each of `tables` (schema.table) again without the rows deleted from it, once they are
    COMPACT_DEAD_SHARE of the rows it stores and at least ROW_GROUP_ROWS: DuckDB does not vacuum
    them (connection_config). It keeps a row group whose rows were all deleted only until the next
    checkpoint, so a log emptied whole needs nothing. Returns the tables written again. Call it
    outside a transaction: each table is written in one of its own."""
    compacted = []
    for qualified in tables:
        schema, name = qualified.split(".")
        found = con.execute(
            "select estimated_size from duckdb_tables() "
            "where database_name = current_database() and schema_name = $s and table_name = $t", {"s": schema, "t": name},
        ).fetchall()
        if not found:
            continue
        stored = found[0][0]  # every row of its row groups, the deleted ones included
        dead = stored - con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
        if dead >= ROW_GROUP_ROWS and dead >= COMPACT_DEAD_SHARE * stored:
            con.execute(f"create or replace table {qualified} as select * from {qualified}")
            compacted.append(qualified)
    return compacted


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = $s and table_name = $t", {"s": schema, "t": name}
        ).fetchall()[0][0]
    )


def ensure_table(con: duckdb.DuckDBPyConnection, qualified: str, schema: dict[str, pl.DataType]) -> None:
    """Create an empty table with a polars schema if it does not exist yet."""
    with registered(con, pl.DataFrame(schema=schema)) as name:
        con.execute(f"create table if not exists {qualified} as select * from {name}")


def sql_path(layer: str, table: str) -> Path:
    return SQL_DIR / layer / f"{table}.sql"


def bind(sql: str, params: dict) -> dict:
    """The parameters a statement uses (DuckDB refuses extra ones); a missing one is an error."""
    names = set(PARAM.findall(re.sub(r"--[^\n]*", "", sql)))
    missing = names - set(params)
    if missing:
        raise KeyError(f"SQL parameter(s) {', '.join(sorted(missing))} not provided")
    return {k: params[k] for k in names}


def create_from_file(con: duckdb.DuckDBPyConnection, qualified: str, path: Path, params: dict | None = None) -> None:
    """`create or replace table qualified as <the SELECT in path>`, binding the parameters it uses."""
    sql = path.read_text()
    con.execute(f"create or replace table {qualified} as\n{sql}", bind(sql, params or {}))


#: the units DuckDB reports its memory limit in ('11.7 GiB', '95.3 MiB')
_MEMORY_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> float:
    """The connection's memory limit in bytes, as DuckDB reports it (to a tenth of its unit)."""
    text = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    number, unit = re.fullmatch(r"([\d.]+) (\w+)", text).groups()
    return float(number) * _MEMORY_UNITS[unit]


def parts_for(rows: int, bytes_per_row: int, memory_limit: float) -> int:
    """How many parts a model of `rows` rows, needing `bytes_per_row` of memory each, is built in
    (build_in_parts) so that each part fits in DuckDB's memory limit, in bytes."""
    return max(1, math.ceil(rows * bytes_per_row / memory_limit))


def part_bounds(con: duckdb.DuckDBPyConnection, table: str, key: str, parts: int) -> list:
    """The lowest `key` of each of up to `parts` ranges of `table`'s key values, in key order, each
    range holding about the same number of rows: a key's rows all fall in one range (they are
    counted together), so a key holding more than a range's share makes fewer ranges. Part p
    holds the keys from bound p up to bound p + 1 (the last: to the end). None for an empty table.

    Example: keys a (4 rows), b (1), c (1), d (2), 3 parts: the rows before each key are 0, 4, 5,
    6 of 8, in thirds 0, 1, 1, 2 (rows before x 3 // 8), so the bounds are a, b, d and the parts
    hold a (4 rows), b and c (2), d (2)."""
    rows = con.execute(
        f"select min({key}) from ("
        f"select {key}, sum(n) over (order by {key} rows between unbounded preceding and current row) - n as rows_before, "
        f"sum(n) over () as total from (select {key}, count(*) as n from {table} group by {key}) as per_key"
        f") as cumulative group by floor(rows_before * $parts / total) order by 1", {"parts": parts}).fetchall()
    return [row[0] for row in rows] or [None]


def build_in_parts(con: duckdb.DuckDBPyConnection, qualified: str, path: Path, params: dict, bounds: list) -> int:
    """`qualified` from the SELECT in `path` run once for each range of a key that `bounds` starts
    (part_bounds: the lowest key of each range; [None]: one range), which the SELECT takes its
    share of by $part_from <= key < $part_to (null: no bound on that side; both null in a one-part
    build): the first part creates the table, the others insert into it, in one transaction. A
    model whose sorts would not fit in memory whole is built this way, so that DuckDB need not
    spill them to disk. A range of keys, not a hash of them, so that DuckDB filters each part as it
    scans (customer_stream at 10M events forced into 7 parts, session 45, six alternating pairs: by
    the persons' hash a median of 49.3 s, by ranges 36.4 s; whole about 30-34 s;
    docs/performance.md), and so that a table written part by part holds each range in row groups
    of its own, which a later scan of one range skips the others of. Returns the number of parts."""
    sql = path.read_text()
    con.execute("begin transaction")
    # the ranges meet at the bounds after the first; the first is open below and the last above,
    # so that no key can fall outside them
    edges = [None, *bounds[1:], None]
    ranges = list(zip(edges, edges[1:]))
    for i, (low, high) in enumerate(ranges):
        verb = f"create or replace table {qualified} as" if i == 0 else f"insert into {qualified}"
        con.execute(f"{verb}\n{sql}", bind(sql, {**params, "part_from": low, "part_to": high}))
    con.execute("commit")
    return len(ranges)


def build_model(con: duckdb.DuckDBPyConnection, layer: str, table: str, params: dict | None = None) -> int:
    """`create or replace table layer.table as <sql/layer/table.sql>`; returns its row count."""
    create_from_file(con, f"{layer}.{table}", sql_path(layer, table), params)
    return con.execute(f"select count(*) from {layer}.{table}").fetchall()[0][0]


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (bound parameters only)."""
    return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())


def query(con: duckdb.DuckDBPyConnection, layer: str, table: str, params: dict | None = None) -> pl.DataFrame:
    sql = sql_path(layer, table).read_text()
    return fetch(con, sql, bind(sql, params or {}))


def table_fingerprint(con: duckdb.DuckDBPyConnection, qualified: str, exclude: tuple[str, ...] = ()) -> str:
    """SHA-256 of a table's rows in a canonical order: equal tables give equal fingerprints.

    Floating-point columns are rounded to 9 decimals first: a parallel sum may add the same
    numbers in another order and differ in the last bit, which is not a different result.
    """
    columns = [
        (name, kind)
        for name, kind in con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = $s and table_name = $t "
            "order by ordinal_position",
            {"s": qualified.split(".")[0], "t": qualified.split(".")[1]},
        ).fetchall()
        if name not in exclude
    ]
    listing = ", ".join(f'round("{c}", 9) as "{c}"' if kind in ("DOUBLE", "FLOAT") else f'"{c}"' for c, kind in columns)
    frame = fetch(con, f"select {listing} from {qualified} order by all")
    digest = hashlib.sha256(",".join(c for c, _ in columns).encode())
    for batch in frame.iter_slices(100_000):
        digest.update(batch.write_csv().encode())
    return digest.hexdigest()


# --- time zones ---------------------------------------------------------------------------------

PERIODS_FROM = dt.datetime(1970, 1, 1)
PERIODS_TO = dt.datetime(2100, 1, 1)


def _offset(tz: zoneinfo.ZoneInfo, utc: dt.datetime) -> int:
    return int(utc.replace(tzinfo=dt.timezone.utc).astimezone(tz).utcoffset().total_seconds())


def timezone_periods(names: list[str]) -> pl.DataFrame:
    """For each zone, the spans of UTC time with one offset, as ranges of local wall-clock time.

    A local time inside a repeated hour (clocks go back) matches two spans and a local time inside
    a skipped hour (clocks go forward) is given to the span before the change; in both cases the
    SQL takes the larger offset, which is the offset in force *before* the change (docs/time.md).
    """
    rows = [row for name in sorted(set(names)) for row in _zone_periods(name)]
    return pl.DataFrame(
        rows,
        schema={
            "timezone": pl.String,
            "local_year": pl.Int64,
            "utc_start": pl.Datetime("us"),
            "utc_end": pl.Datetime("us"),
            "utc_offset_seconds": pl.Int64,
            "local_start": pl.Datetime("us"),
            "local_end": pl.Datetime("us"),
        },
    )


@functools.cache
def _zone_periods(name: str) -> tuple[dict, ...]:
    """One zone's rows of timezone_periods (probing it daily from 1970 to 2100 takes about 0.1-0.25 s).
    Kept for the process: zoneinfo itself keeps a zone's rules once loaded (ZoneInfo caches by key)."""
    rows = []
    tz = zoneinfo.ZoneInfo(name)
    starts = [PERIODS_FROM]
    offsets = [_offset(tz, PERIODS_FROM)]
    day = PERIODS_FROM
    step = dt.timedelta(days=1)
    while day < PERIODS_TO:
        nxt = day + step
        if _offset(tz, nxt) != offsets[-1]:
            lo, hi = day, nxt  # the change happens in (lo, hi]
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if _offset(tz, mid) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            starts.append(hi)
            offsets.append(_offset(tz, hi))
        day = nxt
    for i, (start, offset) in enumerate(zip(starts, offsets)):
        end = starts[i + 1] if i + 1 < len(starts) else PERIODS_TO
        following = offsets[i + 1] if i + 1 < len(starts) else offset
        local_start = start + dt.timedelta(seconds=offset)
        # stretched over a following gap, so skipped wall-clock times still match
        local_end = end + dt.timedelta(seconds=max(offset, following))
        # one row per local calendar year the span touches: the SQL joins on (timezone, year)
        # before the range test, so each local time meets two or three candidate spans
        for year in range(local_start.year, (local_end - dt.timedelta(microseconds=1)).year + 1):
            rows.append(
                {
                    "timezone": name,
                    "local_year": year,
                    "utc_start": start,
                    "utc_end": end,
                    "utc_offset_seconds": offset,
                    "local_start": local_start,
                    "local_end": local_end,
                }
            )
    return tuple(rows)

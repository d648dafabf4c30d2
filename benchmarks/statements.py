"""One model's SELECT timed on a warehouse copied several times over: 100M-event behaviour (spill,
per-part costs) in minutes, without generating and building 100M events (about two hours).

    # a lab database holding ten copies of the tables the statement reads
    uv run --locked --group bench python benchmarks/statements.py copy \\
        --source /tmp/journey-bench/bench.duckdb --lab /tmp/lab/x10.duckdb --copies 10 \\
        --table identity.identifier_links=left_identifier,right_identifier,event_key \\
        --setup "create table identity.region (identifier varchar)" \\
        --setup "create table identity.redecided_pairs (left_identifier varchar, right_identifier varchar)"
    # the statement as it is and a variant, alternating, into a scratch table
    uv run --locked --group bench python benchmarks/statements.py time --lab /tmp/lab/x10.duckdb \\
        --rounds 2 --param whole_graph=true sql/identity/steps/link_pairs.sql /tmp/variant.sql

Copy i of a table has '~i' appended to each column named after `=` (keys and identifiers), so the
copies are disjoint persons, identifiers and events and a key has the same suffix in every table:
joins by key still match within a copy. What is not a key is copied as it is. A copy is not new
data: repeated values compress better than real ones, and each copy's identity graph is the
original's, so figures are for comparing two statements on the same lab database, not for the
results table. Session 49 checked it against session 48's real 100M run: `identity.link_pairs`
took 82.2-85.7 s and spilled 8.9-9.4 GiB on ten copies of the 10M warehouse's links, 83.50 s on
the real 100M (docs/performance.md); but `journeys.event_persons` took 270.2 s and spilled 30.7
GiB on ten copies of what it reads, against 108 s and 9.55 GiB on the real 100M: check a
statement's base figure against a real run before trusting its copies. The setup statements run
with the source warehouse attached as `source`; create the schemas they need first.

`time` runs each SELECT (files in the project's SQL dialect, `$name` parameters bound from the
journeys settings and `--param`) with the pipeline's DuckDB settings (memory limit, no vacuum) and
a spill folder of its own, alternating the files round by round; with `--parts N --part-key
table.column` it builds the table in N ranges of that key as warehouse.build_in_parts does (the
stream's parts). Each result prints its seconds, DuckDB's spill at its peak, its rows and a
checksum of every column, so that a variant can be checked to give the same rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pipeline (which imports journey_analytics) before duckdb: importing the package sets DuckDB's
# allocator options, as the pipeline runs
from pipeline import MemorySampler  # noqa: E402
import duckdb  # noqa: E402

from journey_analytics.journeys import params as journey_params  # noqa: E402
from journey_analytics.settings import load_settings  # noqa: E402
from journey_analytics.warehouse import bind, build_in_parts, connection_config, part_bounds  # noqa: E402

SCRATCH = "main.statement_lab"


def copy_tables(source: Path, lab: Path, copies: int, tables: dict[str, list[str]], setup: list[str] = ()) -> dict[str, int]:
    """`lab` (created anew) holding `copies` copies of each of `tables` (schema.table -> the columns
    given the suffix '~i' in copy i), then the `setup` statements; returns each table's rows."""
    lab.unlink(missing_ok=True)
    with duckdb.connect(str(lab)) as con:
        con.execute("attach $source as source (read_only)", {"source": str(source)})
        rows = {}
        for qualified, keys in tables.items():
            schema, _ = qualified.split(".")
            con.execute(f"create schema if not exists {schema}")
            replaced = ", ".join(f"{key} || '~' || copy_number as {key}" for key in keys)
            select = f"* exclude (copy_number) replace ({replaced})" if keys else "* exclude (copy_number)"
            con.execute(f"create table {qualified} as select {select} from source.{qualified}, range($copies) as copies (copy_number)",
                        {"copies": copies})
            rows[qualified] = con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
        for statement in setup:
            con.execute(statement)
        con.execute("detach source")
    return rows


def time_statement(con: duckdb.DuckDBPyConnection, path: Path, values: dict, spill: Path,
                   parts: int = 1, part_key: str | None = None) -> dict:
    """The SELECT in `path` into SCRATCH (in ranges of `part_key` when `parts` > 1): seconds, spill
    peak (pipeline.MemorySampler's, of the folder `spill`), rows and a checksum of every column."""
    with MemorySampler(interval=0.2, spill=[spill]) as sampler:
        began = time.perf_counter()
        if parts > 1:
            table, key = part_key.rsplit(".", 1)
            build_in_parts(con, SCRATCH, path, values, part_bounds(con, table, key, parts))
        else:
            sql = path.read_text()
            con.execute(f"create or replace table {SCRATCH} as\n{sql}", bind(sql, values))
        seconds = time.perf_counter() - began
    rows, checksum = con.execute(f"select count(*), sum(hash(scratch)) from {SCRATCH} as scratch").fetchall()[0]
    con.execute(f"drop table {SCRATCH}")
    con.execute("checkpoint")
    return {"file": str(path), "seconds": round(seconds, 2), "spill_peak_gib": round(sampler.spill_peak / 2**30, 2),
            "rows": int(rows), "checksum": str(checksum)}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="a lab database of several copies of a warehouse's tables")
    copy.add_argument("--source", type=Path, required=True, help="the warehouse to copy from (opened read-only)")
    copy.add_argument("--lab", type=Path, required=True, help="the lab database to create (replaced)")
    copy.add_argument("--copies", type=int, default=10)
    copy.add_argument("--table", action="append", required=True, metavar="SCHEMA.TABLE=KEY,KEY",
                      help="a table to copy and the columns suffixed in each copy (repeatable)")
    copy.add_argument("--setup", action="append", default=[], help="a statement run after the copies (repeatable)")
    timing = commands.add_parser("time", help="time SELECT files on a lab database, alternating")
    timing.add_argument("--lab", type=Path, required=True)
    timing.add_argument("--rounds", type=int, default=2)
    timing.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a $parameter's value (JSON, else text)")
    timing.add_argument("--parts", type=int, default=1)
    timing.add_argument("--part-key", help="table.column whose ranges the parts are (with --parts)")
    timing.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()

    if args.command == "copy":
        tables = {}
        for spec in args.table:
            qualified, _, keys = spec.partition("=")
            tables[qualified] = [k for k in keys.split(",") if k]
        began = time.perf_counter()
        rows = copy_tables(args.source, args.lab, args.copies, tables, args.setup)
        print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - began, 1)}))
        return

    if args.parts > 1 and not args.part_key:
        parser.error("--parts needs --part-key")
    settings = load_settings()
    values = {**journey_params(settings), **{k: _value(v) for k, v in (p.split("=", 1) for p in args.param)}}
    spill = args.lab.with_name(args.lab.name + ".spill")
    shutil.rmtree(spill, ignore_errors=True)
    spill.mkdir(parents=True)
    # the pipeline's connection settings, with a spill folder of the lab's own
    with duckdb.connect(str(args.lab), config={**connection_config(settings), "temp_directory": str(spill)}) as con:
        for round_number in range(args.rounds):
            for path in args.files:
                result = time_statement(con, path, values, spill, args.parts, args.part_key)
                print(json.dumps({"round": round_number, **result}), flush=True)


if __name__ == "__main__":
    main()

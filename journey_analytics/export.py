"""`journey export`: marts to Parquet, CSV and XLSX files for other tools and colleagues
(docs/exports.md).

* Parquet keeps every type exactly. Marts with a natural slicing column (the stage model, the
  attribution model, the path type) are written as Hive-partitioned folders
  (`funnel_conversion/stage_model=default/part-0.parquet`), which Spark, DuckDB, polars, Power BI
  and Tableau read as one table and prune when filtered; the rest as one file each.
* CSV: UTF-8, a header row, ISO-8601 dates and times, empty for null; exact.
* XLSX: one workbook per mart, one sheet, a bold frozen header and typed cells. Excel keeps 15
  significant digits and times to the millisecond, so timestamps are rounded to the millisecond
  and doubles read back as Excel holds them; a mart larger than Excel's 1,048,575 data rows is
  refused with a clear error (use Parquet or CSV).

Rows are streamed as Arrow record batches for Parquet and CSV, so memory stays bounded; an XLSX
sheet is at most Excel's row limit.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv", "xlsx")
#: Parquet partition column per mart: the column analysts filter on first
PARTITION_BY = {
    "funnel_conversion": "stage_model",
    "funnel_drop_off": "stage_model",
    "drop_off_drivers": "stage_model",
    "attribution": "model",
    "path_variants": "path_type",
}
EXCEL_MAX_ROWS = 1_048_575  # 1,048,576 rows less the header
BATCH_ROWS = 100_000


class ExportError(ValueError):
    pass


@dataclass(frozen=True)
class Exported:
    table: str
    format: str
    path: Path
    rows: int


def exportable_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every mart (schema marts), plus the other published tables when reading a snapshot."""
    return [r[0] for r in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_schema not in ('main', 'raw', 'quarantine') order by table_schema <> 'marts', 1"
    ).fetchall()]


def resolve_tables(con: duckdb.DuckDBPyConnection, names: list[str]) -> list[str]:
    """`funnel_conversion` or `marts.funnel_conversion` -> qualified names; all marts when empty."""
    available = exportable_tables(con)
    if not names:
        return [t for t in available if t.startswith("marts.")]
    resolved = []
    for name in names:
        qualified = name if "." in name else f"marts.{name}"
        if qualified not in available:
            raise ExportError(f"no table {qualified!r} to export; available: {', '.join(available)}")
        resolved.append(qualified)
    return resolved


def _query(qualified: str) -> str:
    # a fixed row order (every column) makes the files identical from run to run
    return f"select * from {qualified} order by all"


def _write_parquet(con, qualified: str, folder: Path) -> tuple[Path, int]:
    name = qualified.split(".")[1]
    reader = con.sql(_query(qualified)).to_arrow_reader(BATCH_ROWS)
    column = PARTITION_BY.get(name) if qualified.startswith("marts.") else None
    if column:
        target = folder / name
        shutil.rmtree(target, ignore_errors=True)
        rows = _Counting(reader)
        pads.write_dataset(rows, target, format="parquet", partitioning=[column], partitioning_flavor="hive",
                           basename_template="part-{i}.parquet", existing_data_behavior="delete_matching",
                           max_rows_per_group=BATCH_ROWS)
        return target, rows.count
    target = folder / f"{name}.parquet"
    with pq.ParquetWriter(target, reader.schema) as writer:
        return target, _write_batches(reader, writer)


def _write_batches(reader: pa.RecordBatchReader, writer) -> int:
    """Stream every batch into a pyarrow file writer; the rows written."""
    count = 0
    for batch in reader:
        writer.write_batch(batch)
        count += batch.num_rows
    return count


class _Counting:
    """A record batch reader that counts what passes through it."""

    def __init__(self, reader: pa.RecordBatchReader):
        self.schema, self.count, self._reader = reader.schema, 0, reader

    def __iter__(self):
        for batch in self._reader:
            self.count += batch.num_rows
            yield batch

    def __arrow_c_stream__(self, requested_schema=None):
        return pa.RecordBatchReader.from_batches(self.schema, iter(self)).__arrow_c_stream__(requested_schema)


def _write_csv(con, qualified: str, folder: Path) -> tuple[Path, int]:
    target = folder / f"{qualified.split('.')[1]}.csv"
    reader = con.sql(_query(qualified)).to_arrow_reader(BATCH_ROWS)
    with pacsv.CSVWriter(target, reader.schema) as writer:
        return target, _write_batches(reader, writer)


def _write_xlsx(con, qualified: str, folder: Path) -> tuple[Path, int]:
    name = qualified.split(".")[1]
    rows = con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
    if rows > EXCEL_MAX_ROWS:
        raise ExportError(f"{qualified} has {rows:,} rows; an Excel sheet holds at most {EXCEL_MAX_ROWS:,}: export it as parquet or csv")
    frame = pl.from_arrow(con.sql(_query(qualified)).to_arrow_table())
    frame = frame.with_columns(pl.col(pl.Datetime).dt.round("1ms"))
    target = folder / f"{name}.xlsx"
    frame.write_excel(target, worksheet=name[:31], autofit=True, freeze_panes=(1, 0), header_format={"bold": True},
                      dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm:ss.000", pl.Date: "yyyy-mm-dd"}, float_precision=6)
    return target, frame.height


WRITERS: dict[str, Callable] = {"parquet": _write_parquet, "csv": _write_csv, "xlsx": _write_xlsx}


def export(con: duckdb.DuckDBPyConnection, tables: list[str], formats: list[str], out: Path,
           progress: Callable[[str, str], None] | None = None) -> list[Exported]:
    """Write each table in each format under out/<format>/; returns what was written."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ExportError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    written = []
    for fmt in formats:
        folder = out / fmt
        folder.mkdir(parents=True, exist_ok=True)
        for qualified in tables:
            if progress:
                progress(qualified, fmt)
            path, rows = WRITERS[fmt](con, qualified, folder)
            written.append(Exported(qualified, fmt, path, rows))
    return written

"""Finding landed files, recognising their format, and loading one source's delivery date.

Layout: `<landing>/<source>/<YYYY-MM-DD>/<file>` (files may sit in sub-folders of the date folder
and may be gzipped). Every file ends in `raw.landed_files` with its row counts; every record read
ends as a staged row or a quarantined row (duplicates are removed later, across deliveries).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import io
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from journey_analytics import privacy
from journey_analytics.ingest import canonical as c
from journey_analytics.ingest import json_records
from journey_analytics.ingest.reading import (
    BadRecord,
    FileLoadError,
    decode,
    flatten,
    read_bytes,
    read_csv,
    read_json_records,
    require_columns,
)
from journey_analytics.ingest.validate import validate
from journey_analytics.schemas import COLUMNS, LANDED_FILE_COLUMNS, LOAD_ERROR_COLUMNS, QUARANTINE_COLUMNS
from journey_analytics.settings import ColumnSpec, Mapping, Settings

SOURCES = ("web", "email", "crm", "store")

#: source -> entity -> (staged layout, staged table)
ENTITIES: dict[str, dict[str, str]] = {
    "web": {"events": "events"},
    "email": {"events": "events"},
    "crm": {"contacts": "contacts", "activities": "events", "deals": "events"},
    "store": {"stores": "stores", "transactions": "transactions", "visits": "visits"},
}

#: input columns that hold emails or phones, per (source, entity): their text never leaves ingestion
PII_COLUMNS = {"email", "phone", "receipt_email", "receipt_phone", "traits.email", "traits.phone"}

REQUIRED_CSV_COLUMNS = {
    ("web", "events"): ["event_id"],
    ("crm", "contacts"): ["contact_id"],
    ("crm", "activities"): ["activity_id", "contact_id", "activity_type", "occurred_at"],
    ("crm", "deals"): ["deal_id", "contact_id", "stage", "changed_at"],
    ("store", "stores"): ["store_id", "timezone"],
    ("store", "transactions"): ["transaction_id", "line_number", "store_id", "occurred_at", "quantity", "unit_price"],
    ("store", "visits"): ["visit_id", "store_id", "occurred_at"],
}

DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def table_name(source: str, entity: str) -> str:
    return f"stg_{source}__{entity}"


@dataclass(frozen=True)
class LandedFile:
    source: str
    path: Path
    rel_path: str  # relative to the landing folder, with forward slashes
    delivery_date: dt.date


@dataclass
class FileResult:
    """What became of one landed file's records."""

    file: LandedFile
    size: int
    entity: str | None = None
    source_format: str | None = None
    sha256: str | None = None
    errors: list[dict] = field(default_factory=list)
    rows_read: int = 0
    staged_rows: int = 0
    quarantined_rows: int = 0


@dataclass
class SourceLoad:
    """What a chunk of one source's files produced, ready to be written with the rest of its batch
    (staging.write_batch)."""

    staged: dict[str, pl.DataFrame] = field(default_factory=dict)  # entity -> rows
    quarantine: pl.DataFrame | None = None
    load_errors: pl.DataFrame | None = None
    landed_files: pl.DataFrame | None = None


def delivery_dates(landing_dir: Path, sources=SOURCES) -> list[dt.date]:
    """Every delivery date that has a folder under any source."""
    found = set()
    for source in sources:
        root = landing_dir / source
        if root.is_dir():
            for d in root.iterdir():
                if d.is_dir() and DATE_FOLDER.match(d.name):
                    found.add(dt.date.fromisoformat(d.name))
    return sorted(found)


def discover(landing_dir: Path, source: str, delivery_date: dt.date) -> list[LandedFile]:
    folder = landing_dir / source / delivery_date.isoformat()
    if not folder.is_dir():
        return []
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    # Sorted by path so that results never depend on the order the file system lists them.
    return [
        LandedFile(source, p, p.relative_to(landing_dir).as_posix(), delivery_date)
        for p in sorted(files, key=lambda p: p.relative_to(landing_dir).as_posix())
    ]


def classify(source: str, name: str, settings: Settings) -> tuple[str, str, Mapping | None] | None:
    """(entity, source_format, mapping) for a file name, or None when it is not recognised."""
    lower = name.lower()
    for mname, mapping in sorted(settings.mappings.get(source, {}).items()):
        if fnmatch.fnmatch(lower, mapping.match.lower()):
            return mapping.entity, f"mapping:{mname}", mapping
    base = lower.removesuffix(".gz")
    stem, _, ext = base.rpartition(".")
    if source == "web":
        if ext in ("jsonl", "ndjson", "json"):
            return "events", "segment", None
        if ext in ("csv", "tsv"):
            return "events", "snowplow", None
    elif source == "email":
        if ext in ("json", "jsonl", "ndjson"):
            return "events", "sendgrid", None
    elif ext in ("csv", "tsv"):
        for entity in ENTITIES[source]:
            if stem.startswith(entity):
                return entity, f"{source}_csv", None
    return None


# --- JSON records of a mapped file -------------------------------------------------------------


def _s(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return c.dumps(value)


def _frame(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame({"_source_row": [], "_line": []}, schema={"_source_row": pl.Int64, "_line": pl.Int64})
    columns = {k: [r.get(k) for r in rows] for k in rows[0]}
    schema = {k: (pl.Int64 if k in ("_source_row", "_line") else pl.String) for k in columns}
    return pl.DataFrame(columns, schema=schema)


# --- mappings ------------------------------------------------------------------------------------


def apply_mapping(frame: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    """Rename and reshape a user's export into our input columns; unmapped columns are kept."""
    exprs = []
    used = set()
    for target, spec in mapping.columns.items():
        if isinstance(spec, str):
            spec = ColumnSpec(column=spec)
        if spec.row_number_within:
            group = spec.row_number_within
            if group not in frame.columns:
                raise FileLoadError("missing_columns", f"mapped column {group!r} (for {target}) missing from the header (line 1)", 1)
            exprs.append(pl.int_range(1, pl.len() + 1).over(group).cast(pl.String).alias(target))
            continue
        if spec.column is not None:
            if spec.column not in frame.columns:
                raise FileLoadError("missing_columns", f"mapped column {spec.column!r} (for {target}) missing from the header (line 1)", 1)
            used.add(spec.column)
            expr = pl.col(spec.column).cast(pl.String)
        else:
            expr = pl.lit(spec.constant, pl.String)
        if spec.regex:
            expr = pl.coalesce(expr.str.extract(spec.regex, 1), expr)
        if spec.values:
            expr = expr.replace(spec.values)
        if spec.prefix_values:
            chained = None
            for prefix, value in spec.prefix_values.items():
                cond = expr.str.starts_with(prefix)
                chained = pl.when(cond).then(pl.lit(value)) if chained is None else chained.when(cond).then(pl.lit(value))
            expr = chained.otherwise(pl.lit(spec.default) if spec.default is not None else expr)
        elif spec.default is not None:
            expr = pl.coalesce(expr, pl.lit(spec.default))
        exprs.append(expr.alias(target))
    targets = set(mapping.columns)
    kept = [col for col in frame.columns if col not in used and col not in targets]
    return frame.select(*[pl.col(k) for k in kept], *exprs)


# --- reading a batch of files ---------------------------------------------------------------------


CANONICALIZERS = {
    ("crm", "contacts"): c.crm_contacts,
    ("crm", "activities"): c.crm_activities,
    ("crm", "deals"): c.crm_deals,
    ("store", "stores"): c.store_stores,
    ("store", "transactions"): c.store_transactions,
    ("store", "visits"): c.store_visits,
}

#: file-level errors after which nothing of the file was read
FATAL_ERRORS = {"unrecognised_file", "bad_gzip", "undecodable_bytes", "missing_columns", "malformed_csv", "malformed_parquet"}

#: formats whose records DuckDB parses and flattens (json_records.py)
DUCKDB_JSON_FORMATS = ("segment", "sendgrid")


def canonicalizer(source: str, entity: str, fmt: str):
    """Web and email mappings take Segment's and SendGrid's field names; the others, INPUTS.md's."""
    if source == "web":
        return c.snowplow_events if fmt == "snowplow" else c.segment_events
    if source == "email":
        return c.sendgrid_events
    return CANONICALIZERS[(source, entity)]


def _input_frame(text: str | bytes, source: str, entity: str, fmt: str, mapping: Mapping | None, path: Path):
    """(input frame of strings, bad records, file notes) for a CSV, Parquet or mapped JSON file."""
    if mapping is not None:
        if mapping.format == "csv":
            frame, bad, notes = read_csv(text, mapping.delimiter), [], []
        elif mapping.format == "parquet":
            try:
                frame = pl.read_parquet(io.BytesIO(text))
            except Exception as exc:  # polars raises several error types for a damaged file
                raise FileLoadError("malformed_parquet", f"not a readable Parquet file: {exc}", None) from exc
            frame = frame.select(pl.all().cast(pl.String)).with_row_index("_source_row", offset=1).with_columns(
                pl.col("_source_row").cast(pl.Int64), pl.col("_source_row").cast(pl.Int64).alias("_line")
            )
            bad, notes = [], []
        else:
            records, bad, notes = read_json_records(text)
            frame = _frame([{"_source_row": r, "_line": ln, **{k: _s(v) for k, v in flatten(o).items()}} for r, ln, o in records])
        return apply_mapping(frame, mapping), bad, notes
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    frame = read_csv(text, delimiter)
    if frame.height:
        require_columns(frame, REQUIRED_CSV_COLUMNS[(source, entity if source != "web" else "events")])
    return frame, [], []


@dataclass
class _Opened:
    """A landed file whose bytes were read and decoded."""

    file: LandedFile
    entity: str
    fmt: str
    mapping: Mapping | None
    content: str | bytes
    gzipped: bool


def _open(lf: LandedFile, settings: Settings, result: FileResult) -> _Opened | None:
    """Classify, read and decode one file; file-level problems go to result.errors."""
    kind = classify(lf.source, lf.path.name, settings)
    if kind is None:
        result.errors.append(_error(lf, None, "unrecognised_file",
                                    f"file name not recognised for source '{lf.source}' (see docs/inputs.md, or add a mapping)", None))
        return None
    entity, fmt, mapping = kind
    result.entity, result.source_format = entity, fmt
    try:
        data, gzipped = read_bytes(lf.path)
        result.sha256 = hashlib.sha256(data).hexdigest()
        if not data.strip():
            result.errors.append(_error(lf, entity, "empty_file", "the file is empty: nothing to load", None))
            return None
        binary = mapping is not None and mapping.format == "parquet"
        content = data if binary else decode(data, mapping.encoding if mapping else "utf-8")
    except FileLoadError as exc:
        result.errors.append(_error(lf, entity, exc.error, exc.message, exc.line))
        return None
    return _Opened(lf, entity, fmt, mapping, content, gzipped)


def _error(lf: LandedFile, entity: str | None, kind: str, message: str, line: int | None) -> dict:
    return {"source": lf.source, "entity": entity, "_delivery_date": lf.delivery_date, "_source_file": lf.rel_path,
            "line": line, "error": kind, "message": f"{lf.rel_path}: {message}"}


def _json_records(con: duckdb.DuckDBPyConnection, files: list[_Opened], results: dict[str, FileResult]) -> tuple[pl.DataFrame, list[tuple[str, BadRecord]]]:
    """The records of Segment/SendGrid files: one DuckDB scan per compression, and file by file
    (DuckDB first, then Python record by record) where a scan fails on a broken record."""
    frames, bad = [], []
    for gzipped in (False, True):
        group = [f for f in files if f.gzipped == gzipped]
        if not group:
            continue
        try:
            frames.append(json_records.scan(con, [f.file.path for f in group], [f.file.rel_path for f in group], gzipped))
            continue
        except duckdb.Error:
            pass
        for f in group:
            try:
                frames.append(json_records.scan(con, [f.file.path], [f.file.rel_path], gzipped))
            except duckdb.Error:
                frame, broken, notes = json_records.python_records(f.content, f.file.rel_path)
                frames.append(frame)
                bad.extend((f.file.rel_path, b) for b in broken)
                results[f.file.rel_path].errors.extend(_error(f.file, f.entity, n.error, n.message, n.line) for n in notes)
    return pl.concat(frames) if frames else pl.DataFrame(schema=json_records.RECORD_SCHEMA), bad


def _input_frames(con, files: list[_Opened], settings: Settings, results: dict[str, FileResult]):
    """One input frame for files of the same entity and format, with `_source_file`, and the bad
    records found while reading them [(file, BadRecord)]."""
    first = files[0]
    if first.mapping is None and first.fmt in DUCKDB_JSON_FORMATS:
        records, bad = _json_records(con, files, results)
        frame, not_objects = json_records.extract(con, records, first.fmt, settings)
        for row in not_objects.iter_rows(named=True):
            reason = f"record {row['_source_row']} holds a JSON {row['_json_type'].lower()}, not an object"
            bad.append((row["_source_file"], BadRecord(row["_source_row"], row["_source_row"], reason, row["_raw"][:2000])))
        return frame, bad
    frames, bad = [], []
    for f in files:
        try:
            frame, broken, notes = _input_frame(f.content, f.file.source, f.entity, f.fmt, f.mapping, f.file.path)
        except FileLoadError as exc:
            results[f.file.rel_path].errors.append(_error(f.file, f.entity, exc.error, exc.message, exc.line))
            continue
        results[f.file.rel_path].errors.extend(_error(f.file, f.entity, n.error, n.message, n.line) for n in notes)
        frames.append(frame.with_columns(pl.lit(f.file.rel_path).alias("_source_file")))
        bad.extend((f.file.rel_path, b) for b in broken)
    if not frames:
        return pl.DataFrame(schema={"_source_file": pl.String, "_source_row": pl.Int64}), bad
    return pl.concat(frames, how="diagonal_relaxed"), bad


def _bad_record_rows(bad: list[tuple[str, BadRecord]], files: dict[str, LandedFile], entity: str, settings: Settings) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "source": files[name].source,
                "entity": entity,
                "_delivery_date": files[name].delivery_date,
                "_source_file": name,
                "_source_row": b.record,
                "field": "(record)",
                "reason": b.reason,
                "raw_record": privacy.scrub_text(c.redact_json_text(b.text, settings), settings.hash_salt),
            }
            for name, b in bad
        ],
        schema=QUARANTINE_COLUMNS,
    )


def load_files(con: duckdb.DuckDBPyConnection, source: str, files: list[LandedFile], settings: Settings) -> SourceLoad:
    """Read, validate and split a chunk of one source's files (any delivery dates): the files of
    each entity and format are canonicalised and validated together. `con` parses JSON; nothing
    is written to it."""
    results = {f.rel_path: FileResult(f, f.path.stat().st_size) for f in files}
    by_name = {f.rel_path: f for f in files}
    groups: dict[tuple, list[_Opened]] = {}
    with ThreadPoolExecutor(max_workers=OPEN_THREADS) as pool:
        opened_files = list(pool.map(lambda f: _open(f, settings, results[f.rel_path]), files))
    for opened in opened_files:
        if opened is not None:
            key = (opened.entity, opened.fmt, opened.mapping.model_dump_json() if opened.mapping else "")
            groups.setdefault(key, []).append(opened)
    dates = {name: lf.delivery_date for name, lf in by_name.items()}
    staged: dict[str, list[pl.DataFrame]] = {e: [] for e in ENTITIES[source]}
    quarantine: list[pl.DataFrame] = []
    for (entity, fmt, _), group in sorted(groups.items()):
        frame, bad = _input_frames(con, group, settings, results)
        frame = frame.with_columns(pl.col("_source_file").replace_strict(dates, return_dtype=pl.Date).alias("_delivery_date"))
        mapping = group[0].mapping
        ctx = c.ReadContext(source, entity, ENTITIES[source][entity], fmt, settings, mapping.timestamp_format if mapping else None)
        good, rejects = validate(canonicalizer(source, entity, fmt)(frame, ctx), ctx, frame, PII_COLUMNS)
        staged[entity].append(good)
        quarantine.extend([rejects, _bad_record_rows(bad, by_name, entity, settings)])
        read = frame.group_by("_source_file").len()
        for name, n in read.iter_rows():
            results[name].rows_read += n
        for name, n in good.group_by("_source_file").len().iter_rows():
            results[name].staged_rows = n
        for name, n in rejects.group_by("_source_file").len().iter_rows():
            results[name].quarantined_rows += n
        for name, _ in bad:  # read, and quarantined as unreadable records
            results[name].rows_read += 1
            results[name].quarantined_rows += 1

    load = SourceLoad()
    for entity, kind in ENTITIES[source].items():
        frames = [f for f in staged[entity] if f.height]
        load.staged[entity] = pl.concat(frames) if frames else pl.DataFrame(schema=COLUMNS[kind])
    rejects = [q for q in quarantine if q.height]
    load.quarantine = pl.concat(rejects) if rejects else pl.DataFrame(schema=QUARANTINE_COLUMNS)
    errors = [e for r in results.values() for e in r.errors]
    load.load_errors = pl.DataFrame(errors, schema=LOAD_ERROR_COLUMNS) if errors else pl.DataFrame(schema=LOAD_ERROR_COLUMNS)
    load.landed_files = pl.DataFrame(
        [
            {
                "source": source,
                "entity": r.entity,
                "source_format": r.source_format,
                "_delivery_date": r.file.delivery_date,
                "_source_file": r.file.rel_path,
                "content_sha256": r.sha256,
                "size_bytes": r.size,
                "rows_read": r.rows_read,
                "rows_parsed": r.staged_rows,
                "rows_quarantined": r.quarantined_rows,
                "status": "failed" if any(e["error"] in FATAL_ERRORS for e in r.errors) else ("empty" if r.rows_read == 0 else "loaded"),
            }
            for r in results.values()
        ],
        schema=LANDED_FILE_COLUMNS,
    )
    return load


#: a batch of whole delivery dates, replaced in one transaction, is cut after this many bytes of
#: landed files (gzipped bytes count five times)
BATCH_BYTES = 400 * 1024 * 1024
#: a batch's files are read in chunks of about this many bytes (weighed as for BATCH_BYTES), all
#: written in the batch's one transaction (staging.write_batch): memory holds one chunk's frames,
#: however large a batch or one day's delivery (in the 100M-event benchmark one day's SendGrid files
#: weigh up to 998 MB). Smaller chunks hold less and cost time: 10M events, each source ingested alone, two
#: alternating rounds, 100 MB chunks against 400 MB: peak RSS 3.8-3.9 against 7.3-7.5 GiB (web),
#: 3.2 against 5.4 GiB (email); 143.1-148.1 against 135.2-138.8 s in all, email 35.6-36.6 against
#: 28.1-29.9 s (docs/performance.md, "Ingestion in chunks")
CHUNK_BYTES = BATCH_BYTES
#: files are read, gunzipped and hashed on this many threads (zlib and hashlib release the GIL)
OPEN_THREADS = 2
GZIP_WEIGHT = 5


def landed_weight(path: Path) -> int:
    """A file's share of a batch: its size, gzipped bytes counted GZIP_WEIGHT times."""
    return path.stat().st_size * (GZIP_WEIGHT if path.name.lower().endswith(".gz") else 1)


def chunks(items: list, weights: list[int], budget: int = BATCH_BYTES, most: int | None = None) -> list[list]:
    """Consecutive runs of `items` (files, in their order) of at most `budget` bytes by their
    `weights` (and at most `most` items); an item heavier than `budget` is a run of its own."""
    out: list[list] = []
    size = 0
    for item, weight in zip(items, weights, strict=True):
        if not out or size + weight > budget or (most is not None and len(out[-1]) >= most):
            out.append([])
            size = 0
        out[-1].append(item)
        size += weight
    return out


def batches(landing_dir: Path, source: str, dates: list[dt.date], batch_bytes: int = BATCH_BYTES,
            chunk_bytes: int = CHUNK_BYTES) -> list[tuple[list[dt.date], list[list[LandedFile]]]]:
    """Whole delivery dates grouped into batches of about batch_bytes: [(dates, chunks of files)].
    A batch's dates are replaced in one transaction (staging.write_batch), its files read in chunks
    of about chunk_bytes (`chunks`), so that memory holds one chunk's frames at a time however
    large a batch or one day's delivery is."""
    out: list[tuple[list[dt.date], list[LandedFile], list[int]]] = []
    size = 0
    for day in sorted(dates):
        files = discover(landing_dir, source, day)
        weights = [landed_weight(f.path) for f in files]
        if not out or size + sum(weights) > batch_bytes:
            out.append(([], [], []))
            size = 0
        size += sum(weights)
        out[-1][0].append(day)
        out[-1][1].extend(files)
        out[-1][2].extend(weights)
    return [(days, chunks(files, weights, chunk_bytes)) for days, files, weights in out]


def delivery_fingerprints(landing_dir: Path, sources=SOURCES) -> dict[str, str]:
    """For every delivery date with files: a digest of its files' paths, sizes and modification
    times, so a watcher can tell which delivery dates changed since it last looked."""
    digests: dict[str, "hashlib._Hash"] = {}
    for day in delivery_dates(landing_dir, sources):
        for source in sources:
            for landed in discover(landing_dir, source, day):
                stat = landed.path.stat()
                digest = digests.setdefault(day.isoformat(), hashlib.sha256())
                digest.update(f"{landed.rel_path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {day: digest.hexdigest()[:16] for day, digest in sorted(digests.items())}


def contiguous_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days grouped into runs of consecutive days: one run per range.

    Dagster records a few events per partition of a run, so one range over years of empty days
    would cost minutes; the days in between hold no deliveries and need no work.
    """
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges

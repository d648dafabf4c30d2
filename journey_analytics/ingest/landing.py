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
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from journey_analytics import privacy
from journey_analytics.ingest import canonical as c
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
    file: LandedFile
    entity: str | None
    source_format: str | None
    staged: pl.DataFrame | None
    rejects: pl.DataFrame
    errors: list[dict]
    rows_read: int
    sha256: str | None
    size: int


@dataclass
class SourceLoad:
    """What one source's delivery date produced, ready to replace that slice of the warehouse."""

    source: str
    delivery_date: dt.date
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


# --- turning JSON records into input frames ----------------------------------------------------


def _pii_hash(value, kind: str, settings: Settings):
    return c.redacted(value, settings.hash_salt, kind, settings.ingest.phone_default_country)


def _segment_rows(records, settings: Settings) -> list[dict]:
    rows = []
    for record, line, m in records:
        context = m.get("context") if isinstance(m.get("context"), dict) else {}
        page = context.get("page") if isinstance(context.get("page"), dict) else {}
        campaign = context.get("campaign") if isinstance(context.get("campaign"), dict) else {}
        props = m.get("properties") if isinstance(m.get("properties"), dict) else {}
        traits = m.get("traits") if isinstance(m.get("traits"), dict) else (
            context.get("traits") if isinstance(context.get("traits"), dict) else {}
        )
        email = traits.get("email") or props.get("email")
        phone = traits.get("phone") or props.get("phone")
        clean_traits = {k: v for k, v in traits.items() if k not in ("email", "phone")}
        clean_props = {k: v for k, v in props.items() if k not in ("email", "phone")}
        attributes = {"properties": clean_props} if clean_props else {}
        if clean_traits:
            attributes["traits"] = clean_traits
        for key, value in (("title", page.get("title") or props.get("title")), ("user_agent", context.get("userAgent")),
                           ("previous_id", m.get("previousId")), ("event", m.get("event")), ("name", m.get("name"))):
            if value is not None:
                attributes[key] = value
        raw = _redact_json(m, settings)
        rows.append(
            {
                "_source_row": record,
                "_line": line,
                "messageId": _s(m.get("messageId")),
                "type": _s(m.get("type")),
                "event": _s(m.get("event")),
                "timestamp": _s(m.get("timestamp")),
                "anonymousId": _s(m.get("anonymousId")),
                "previousId": _s(m.get("previousId")),
                "userId": _s(m.get("userId")),
                "page_url": _s(page.get("url") or props.get("url")),
                "page_path": _s(page.get("path") or props.get("path")),
                "referrer": _s(page.get("referrer") or props.get("referrer")),
                **{f"campaign.{k}": _s(campaign.get(k)) for k in ("source", "medium", "name", "term", "content")},
                "order_id": _s(props.get("order_id")),
                "revenue": _s(props.get("revenue")),
                "total": _s(props.get("total")),
                "currency": _s(props.get("currency")),
                "session_id": _s(props.get("session_id")),
                "email": _s(email),
                "phone": _s(phone),
                "attributes": c.dumps(attributes),
                "_raw": raw,
            }
        )
    return rows


def _sendgrid_rows(records, settings: Settings) -> list[dict]:
    known = {"email", "timestamp", "event", "sg_event_id"}
    rows = []
    for record, line, m in records:
        category = m.get("category")
        attributes = {k: v for k, v in m.items() if k not in known}
        rows.append(
            {
                "_source_row": record,
                "_line": line,
                **{k: _s(m.get(k)) for k in ("email", "timestamp", "event", "sg_event_id", "sg_message_id", "url")},
                **{k: _s(m.get(k)) for k in settings.email.campaign_fields + settings.email.contact_id_fields},
                "category": c.dumps(category) if isinstance(category, list) else _s(category),
                "attributes": c.dumps(attributes),
                "_raw": _redact_json(m, settings),
            }
        )
    return rows


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


def _redact_json(obj, settings: Settings):
    """A copy of a JSON record with every email/phone field replaced by its hash."""
    if isinstance(obj, dict):
        return c.dumps({k: _redact_value(v, k, settings) for k, v in obj.items()})
    return c.dumps(obj)


def _redact_value(value, key: str, settings: Settings):
    lower = key.lower()
    if isinstance(value, dict):
        return {k: _redact_value(v, k, settings) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, key, settings) for v in value]
    if lower in ("email", "receipt_email", "email_address"):
        return _pii_hash(value, "email", settings)
    if lower in ("phone", "receipt_phone", "phone_number", "mobile"):
        return _pii_hash(value, "phone", settings)
    return value


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


# --- one file ------------------------------------------------------------------------------------


CANONICALIZERS = {
    ("crm", "contacts"): c.crm_contacts,
    ("crm", "activities"): c.crm_activities,
    ("crm", "deals"): c.crm_deals,
    ("store", "stores"): c.store_stores,
    ("store", "transactions"): c.store_transactions,
    ("store", "visits"): c.store_visits,
}


def canonicalizer(source: str, entity: str, fmt: str):
    """Web and email mappings take Segment's and SendGrid's field names; the others, INPUTS.md's."""
    if source == "web":
        return c.snowplow_events if fmt == "snowplow" else c.segment_events
    if source == "email":
        return c.sendgrid_events
    return CANONICALIZERS[(source, entity)]


def _input_frame(text: str | bytes, source: str, entity: str, fmt: str, mapping: Mapping | None, settings: Settings, path: Path):
    """(input frame of strings, bad records, file notes)."""
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
    if fmt == "segment":
        records, bad, notes = read_json_records(text)
        return _frame(_segment_rows(records, settings)), bad, notes
    if fmt == "sendgrid":
        records, bad, notes = read_json_records(text)
        return _frame(_sendgrid_rows(records, settings)), bad, notes
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    frame = read_csv(text, delimiter)
    if frame.height:
        require_columns(frame, REQUIRED_CSV_COLUMNS[(source, entity if source != "web" else "events")])
    return frame, [], []


def _bad_record_rows(bad: list[BadRecord], lf: LandedFile, entity: str, settings: Settings) -> list[dict]:
    return [
        {
            "source": lf.source,
            "entity": entity,
            "_delivery_date": lf.delivery_date,
            "_source_file": lf.rel_path,
            "_source_row": b.record,
            "field": "(record)",
            "reason": b.reason,
            "raw_record": privacy.scrub_text(b.text, settings.hash_salt),
        }
        for b in bad
    ]


def load_file(lf: LandedFile, settings: Settings) -> FileResult:
    errors: list[dict] = []
    empty_rejects = pl.DataFrame(schema=QUARANTINE_COLUMNS)

    def error(kind: str, message: str, line: int | None) -> dict:
        return {"source": lf.source, "entity": entity, "_delivery_date": lf.delivery_date, "_source_file": lf.rel_path,
                "line": line, "error": kind, "message": f"{lf.rel_path}: {message}"}

    size = lf.path.stat().st_size
    kind = classify(lf.source, lf.path.name, settings)
    entity = kind[0] if kind else None
    if kind is None:
        errors.append(error("unrecognised_file", f"file name not recognised for source '{lf.source}' (see docs/inputs.md, or add a mapping)", None))
        return FileResult(lf, None, None, None, empty_rejects, errors, 0, None, size)
    entity, fmt, mapping = kind
    sha = None
    try:
        data = read_bytes(lf.path)
        sha = hashlib.sha256(data).hexdigest()
        if not data.strip():
            errors.append(error("empty_file", "the file is empty: nothing to load", None))
            return FileResult(lf, entity, fmt, None, empty_rejects, errors, 0, sha, size)
        binary = mapping is not None and mapping.format == "parquet"
        text = data if binary else decode(data, mapping.encoding if mapping else "utf-8")
        frame, bad, notes = _input_frame(text, lf.source, entity, fmt, mapping, settings, lf.path)
    except FileLoadError as exc:
        errors.append(error(exc.error, exc.message, exc.line))
        return FileResult(lf, entity, fmt, None, empty_rejects, errors, 0, sha, size)
    errors.extend(error(n.error, n.message, n.line) for n in notes)

    ctx = c.FileContext(
        lf.source, entity, ENTITIES[lf.source][entity], fmt, lf.rel_path, lf.delivery_date, settings,
        mapping.timestamp_format if mapping else None,
    )
    canon = canonicalizer(lf.source, entity, fmt)(frame, ctx)
    staged, rejects = validate(canon, ctx, frame, PII_COLUMNS)
    bad_rows = _bad_record_rows(bad, lf, entity, settings)
    if bad_rows:
        rejects = pl.concat([rejects, pl.DataFrame(bad_rows, schema=QUARANTINE_COLUMNS)])
    return FileResult(lf, entity, fmt, staged, rejects, errors, frame.height + len(bad), sha, size)


def load_source_partition(source: str, delivery_date: dt.date, settings: Settings) -> SourceLoad:
    """Read, validate and split every file one source delivered on one date."""
    results = [load_file(f, settings) for f in discover(settings.landing_dir, source, delivery_date)]
    load = SourceLoad(source, delivery_date)
    for entity, kind in ENTITIES[source].items():
        frames = [r.staged for r in results if r.entity == entity and r.staged is not None and r.staged.height]
        load.staged[entity] = pl.concat(frames) if frames else pl.DataFrame(schema=COLUMNS[kind])
    rejects = [r.rejects for r in results if r.rejects.height]
    load.quarantine = pl.concat(rejects) if rejects else pl.DataFrame(schema=QUARANTINE_COLUMNS)
    errors = [e for r in results for e in r.errors]
    load.load_errors = pl.DataFrame(errors, schema=LOAD_ERROR_COLUMNS) if errors else pl.DataFrame(schema=LOAD_ERROR_COLUMNS)
    fatal = {"unrecognised_file", "bad_gzip", "undecodable_bytes", "missing_columns", "malformed_csv", "malformed_parquet"}
    load.landed_files = pl.DataFrame(
        [
            {
                "source": source,
                "entity": r.entity,
                "source_format": r.source_format,
                "_delivery_date": delivery_date,
                "_source_file": r.file.rel_path,
                "content_sha256": r.sha256,
                "size_bytes": r.size,
                "rows_read": r.rows_read,
                "rows_parsed": (r.staged.height if r.staged is not None else 0),
                "rows_quarantined": r.rejects.height,
                "status": "failed" if any(e["error"] in fatal for e in r.errors) else ("empty" if r.rows_read == 0 else "loaded"),
            }
            for r in results
        ],
        schema=LANDED_FILE_COLUMNS,
    )
    return load


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

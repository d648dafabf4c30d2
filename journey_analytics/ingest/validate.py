"""Validating canonical rows with the pandera models and splitting the bad ones into quarantine.

A row is rejected when its canonicaliser flagged it (`_problem`), when a value was present but
could not be parsed (a timestamp such as `2025-02-30`, a price such as `abc`), or when the
pandera model fails it (a required field missing, a time outside the allowed window, a negative
price...). A rejected row becomes exactly one quarantine row, naming every failing field with a
reason an analyst can act on, and the raw record with emails and phones replaced by their hashes.
"""

from __future__ import annotations

import datetime as dt
import re

import pandera.polars as pa
from pandera.api.polars.types import PolarsData
import polars as pl

from journey_analytics import privacy
from journey_analytics.ingest.canonical import Canonical, ReadContext, dumps, redact_json_text, redacted
from journey_analytics.schemas import COLUMNS, DATAFRAME_CHECK_REASONS, MODELS, QUARANTINE_COLUMNS

#: local wall-clock times may differ from UTC by up to 14 hours
LOCAL_SLACK = dt.timedelta(hours=14)


def latest_allowed(delivery_date, ctx: ReadContext) -> pl.Expr | dt.datetime:
    """The latest believable event time for a file delivered on `delivery_date` (a date or a
    Date expression): the end of that day plus `max_days_after_delivery`."""
    after = dt.timedelta(days=1 + ctx.settings.ingest.max_days_after_delivery)
    if isinstance(delivery_date, pl.Expr):
        return delivery_date.cast(pl.Datetime("us")) + after
    return dt.datetime.combine(delivery_date, dt.time()) + after


def _in_time_window(ctx: ReadContext, slack: dt.timedelta) -> pa.Check:
    """Event times between the configured minimum and the latest allowed for each row's delivery date."""
    lo = ctx.settings.ingest.min_timestamp - slack

    def check(data: PolarsData) -> pl.LazyFrame:
        value = pl.col(data.key)
        hi = latest_allowed(pl.col("_delivery_date"), ctx) + slack
        return data.lazyframe.select(((value >= lo) & (value <= hi)).alias(data.key))

    return pa.Check(check, name="in_time_window")


def schema_for(ctx: ReadContext) -> pa.DataFrameSchema:
    schema = MODELS[ctx.kind].to_schema()
    for name, column in schema.columns.items():
        if name.startswith("_") or column.dtype is None or "Datetime" not in str(column.dtype):
            continue
        slack = LOCAL_SLACK if name.endswith("_local") else dt.timedelta(0)
        schema = schema.update_column(name, checks=[*column.checks, _in_time_window(ctx, slack)])
    return schema


def _describe(check: str, field: str, value, origin: str, ctx: ReadContext, delivery_date: dt.date) -> str:
    if check == "not_nullable":
        return f"missing {origin}"
    if check == "in_time_window":
        value = str(value).removesuffix(".000000")
        lo, hi = ctx.settings.ingest.min_timestamp, latest_allowed(delivery_date, ctx)
        if str(value) < str(lo):
            return f"{origin} {value} is before the configured minimum {lo:%Y-%m-%d}"
        return f"{origin} {value} is in the future for a file delivered on {delivery_date} (latest allowed {hi:%Y-%m-%d %H:%M})"
    if check.startswith("greater_than_or_equal_to"):
        bound = re.search(r"\((.*)\)", check)
        return f"{origin} {value} is negative (must be >= {bound.group(1) if bound else 0})"
    if check.startswith("isin"):
        return f"{origin} {value!r} is not one of {check[5:-1]}"
    if check.startswith("str_matches"):
        return f"{field} {value!r} is not in the expected form"
    if check in DATAFRAME_CHECK_REASONS:
        return DATAFRAME_CHECK_REASONS[check][1]
    return f"{origin} {value!r} fails {check}"


def _raw_records(input_frame: pl.DataFrame, rows: list[int], pii: set[str], ctx: ReadContext) -> list[str]:
    """The rejected input rows as JSON, emails and phones replaced by their hashes."""
    salt = ctx.settings.hash_salt
    country = ctx.settings.ingest.phone_default_country
    if "_raw" in input_frame.columns:  # a JSON record's text as delivered
        raws = [redact_json_text(r, ctx.settings) for r in input_frame["_raw"].gather(rows).to_list()]
    else:
        visible = [c for c in input_frame.columns if not c.startswith("_")]
        raws = []
        for record in input_frame.select(visible)[rows].iter_rows(named=True):
            for key in record:
                base = key.split(".")[-1].lower()
                if key in pii or base in {"email", "phone", "receipt_email", "receipt_phone"}:
                    record[key] = redacted(record[key], salt, "phone" if "phone" in base else "email", country)
            raws.append(dumps(record))
    return [privacy.scrub_text(r, salt) for r in raws]


def validate(canon: Canonical, ctx: ReadContext, input_frame: pl.DataFrame, pii: set[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(staged rows, quarantine rows) for one file."""
    frame = canon.frame
    n = frame.height
    problems: dict[int, list[tuple[str, str]]] = {}

    def add(idx: int, fld: str, reason: str) -> None:
        problems.setdefault(idx, [])
        if all(fld != f or reason != r for f, r in problems[idx]):
            problems[idx].append((fld, reason))

    flagged = frame.select(pl.arg_where(pl.col("_problem").is_not_null()).alias("i"))["i"].to_list() if n else []
    if flagged:
        fields = frame["_problem_field"].gather(flagged).to_list()
        reasons = frame["_problem"].gather(flagged).to_list()
        for i, f, r in zip(flagged, fields, reasons):
            add(i, f, r)

    # Present but unparseable values.
    for fld, (origin, kind) in canon.origins.items():
        if origin not in input_frame.columns:
            continue
        raw = input_frame[origin].cast(pl.String).str.strip_chars()
        bad = (raw.is_not_null() & (raw != "") & frame[fld].is_null()).arg_true().to_list()
        values = raw.gather(bad).to_list() if bad else []
        for i, v in zip(bad, values):
            add(i, fld, f"could not parse {origin} {privacy.scrub_text(v, ctx.settings.hash_salt)!r} as a {kind}")

    staged_cols = list(COLUMNS[ctx.kind])
    delivery_dates = frame["_delivery_date"]
    try:
        schema_for(ctx).validate(frame.select(staged_cols), lazy=True)
    except pa.errors.SchemaErrors as exc:
        for case in exc.failure_cases.iter_rows(named=True):
            idx = case["index"]
            if idx is None:
                raise  # a schema-level failure (a wrong dtype) is a bug in our code, not bad input
            check = case["check"] or ""
            if case["schema_context"] == "DataFrameSchema":
                fld = DATAFRAME_CHECK_REASONS.get(check, ("(row)", ""))[0]
            else:
                fld = case["column"]
            origin = canon.origins.get(fld, (fld, ""))[0]
            if fld in {f for f, _ in problems.get(idx, [])}:
                continue  # already explained by a more specific reason
            add(idx, fld, _describe(check, fld, case["failure_case"], origin, ctx, delivery_dates[idx]))

    bad_rows = sorted(problems)
    staged = frame.select(staged_cols)
    if bad_rows:
        keep = pl.Series([True] * n)
        keep = keep.scatter(bad_rows, False)
        staged = staged.filter(keep)
    staged = staged.with_columns(
        privacy.scrub_column(staged[c], ctx.settings.hash_salt).alias(c)
        for c, t in COLUMNS[ctx.kind].items()
        if t == pl.String and c not in ("email_hash", "phone_hash") and staged.height
    )
    if not bad_rows:
        return staged, pl.DataFrame(schema=QUARANTINE_COLUMNS)
    source_rows = input_frame["_source_row"].gather(bad_rows).to_list()
    rejects = pl.DataFrame(
        {
            "source": [ctx.source] * len(bad_rows),
            "entity": [ctx.entity] * len(bad_rows),
            "_delivery_date": frame["_delivery_date"].gather(bad_rows),
            "_source_file": frame["_source_file"].gather(bad_rows),
            "_source_row": source_rows,
            "field": [", ".join(dict.fromkeys(f for f, _ in problems[i])) for i in bad_rows],
            "reason": ["; ".join(r for _, r in problems[i]) for i in bad_rows],
            "raw_record": _raw_records(input_frame, bad_rows, pii, ctx),
        },
        schema=QUARANTINE_COLUMNS,
    )
    return staged, rejects

"""Segment and SendGrid JSON files to input frames, parsed and flattened by DuckDB.

A batch of files is read in one `read_json_objects` scan (JSON lines or arrays, gzipped or not,
several threads); each record keeps its file and its record number (1-based, blank lines not
counted) and its text, so a rejected row can show the record it came from. DuckDB refuses a
file with a broken record as a whole; such a file is read record by record in Python instead
(`reading.read_json_records`), which keeps every readable record and reports the broken ones, and
its readable records then go through the same extraction, so both ways give the same rows.

The extraction (`SEGMENT_SQL`, `SENDGRID_SQL`) turns a record into the string columns the
canonicalisers read (canonical.SEGMENT_INPUTS / SENDGRID_INPUTS), plus `attributes`: the parts of
the message we keep as JSON, with emails and phones taken out (they are hashed separately).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import polars as pl

from journey_analytics.ingest.reading import BadRecord, read_json_records

#: the records of a batch: file, record number and JSON text (registered as `records`)
RECORD_SCHEMA = {"_source_file": pl.String, "_source_row": pl.Int64, "json": pl.String}

#: Segment message -> input column; nested paths as in the Segment spec. The message's traits are
#: top-level for identify calls and under context for the others.
SEGMENT_PATHS = {
    "messageId": "$.messageId",
    "type": "$.type",
    "event": "$.event",
    "timestamp": "$.timestamp",
    "anonymousId": "$.anonymousId",
    "previousId": "$.previousId",
    "userId": "$.userId",
    "page.url": "$.context.page.url",
    "props.url": "$.properties.url",
    "page.path": "$.context.page.path",
    "props.path": "$.properties.path",
    "page.referrer": "$.context.page.referrer",
    "props.referrer": "$.properties.referrer",
    "campaign.source": "$.context.campaign.source",
    "campaign.medium": "$.context.campaign.medium",
    "campaign.name": "$.context.campaign.name",
    "campaign.term": "$.context.campaign.term",
    "campaign.content": "$.context.campaign.content",
    "order_id": "$.properties.order_id",
    "revenue": "$.properties.revenue",
    "total": "$.properties.total",
    "currency": "$.properties.currency",
    "session_id": "$.properties.session_id",
    "traits.email": "$.traits.email",
    "context.traits.email": "$.context.traits.email",
    "props.email": "$.properties.email",
    "traits.phone": "$.traits.phone",
    "context.traits.phone": "$.context.traits.phone",
    "props.phone": "$.properties.phone",
}

#: input column -> the extracted values it takes, first non-empty wins
SEGMENT_COALESCE = {
    "page_url": ["page.url", "props.url"],
    "page_path": ["page.path", "props.path"],
    "referrer": ["page.referrer", "props.referrer"],
    "email": ["traits.email", "context.traits.email", "props.email"],
    "phone": ["traits.phone", "context.traits.phone", "props.phone"],
}

#: keys never kept in attributes (a merge patch with null removes a key)
PII_PATCH = '{"email":null,"phone":null}'

_EXTRACT = """
select _source_file, _source_row, json as _raw, json_type(json) as _json_type,
       json_extract_string(json, $paths) as _values,
       {attributes} as attributes
from {records}
"""

#: the parts of a Segment message its attributes are built from, read in one parse of the record
#: (a `->` per part parses the whole record again each time; the whole extraction of 599K records
#: took 2.8 s that way and 1.75 s this way)
SEGMENT_ATTRIBUTE_PATHS = [
    "$.event", "$.name", "$.previousId", "$.properties", "$.context.page.title", "$.properties.title",
    "$.traits", "$.context.traits", "$.context.userAgent",
]

#: attributes of a Segment message: its properties and traits without emails and phones, the page
#: title, user agent, previous id, event and name; keys in alphabetical order, absent ones left out
#: (`a` holds SEGMENT_ATTRIBUTE_PATHS in order; DuckDB lists count from 1)
SEGMENT_SQL = _EXTRACT.format(
    records="(select *, json_extract(json, $attribute_paths) as a from records)",
    attributes="""json_merge_patch('{}', json_object(
           'event', a[1],
           'name', a[2],
           'previous_id', a[3],
           'properties', case when json_type(a[4]) = 'OBJECT' then nullif(json_merge_patch(a[4], $pii), '{}') end,
           'title', coalesce(a[5], a[6]),
           'traits', nullif(json_merge_patch('{}', coalesce(
                         case when json_type(a[7]) = 'OBJECT' then json_merge_patch(a[7], $pii) end,
                         case when json_type(a[8]) = 'OBJECT' then json_merge_patch(a[8], $pii) end)), '{}'),
           'user_agent', a[9]))""")

#: attributes of a SendGrid event: every field but the email, timestamp, event and event id
SENDGRID_SQL = _EXTRACT.format(records="records", attributes="case when json_type(json) = 'OBJECT' then json_merge_patch(json, $drop) end")
SENDGRID_DROP = '{"email":null,"timestamp":null,"event":null,"sg_event_id":null}'


def sendgrid_paths(campaign_fields: list[str], contact_id_fields: list[str]) -> dict[str, str]:
    names = ["email", "timestamp", "event", "sg_event_id", "sg_message_id", "url", "category", *campaign_fields, *contact_id_fields]
    return {name: "$." + orjson.dumps(name).decode() for name in dict.fromkeys(names)}


def scan(con: duckdb.DuckDBPyConnection, paths: list[Path], names: list[str], gzipped: bool) -> pl.DataFrame:
    """Every record of the files in one DuckDB scan (RECORD_SCHEMA); raises duckdb.Error when any
    file holds a broken record. `names` are the files' names as staged (relative paths)."""
    table = con.sql(
        "select filename, json from read_json_objects($files, format = 'auto', filename = true, compression = $compression)",
        params={"files": [str(p) for p in paths], "compression": "gzip" if gzipped else "none"},
    ).to_arrow_table()
    by_path = dict(zip((str(p) for p in paths), names))
    frame = pl.from_arrow(table)
    if not frame.height:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    # DuckDB keeps the files' order and each file's record order (preserve_insertion_order).
    return frame.select(
        pl.col("filename").replace_strict(by_path, return_dtype=pl.String).alias("_source_file"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("filename").alias("_source_row"),
        pl.col("json").cast(pl.String),
    )


def python_records(text: str, name: str) -> tuple[pl.DataFrame, list[BadRecord], list]:
    """A file DuckDB refused, record by record: (its readable records, the broken ones, file notes)."""
    good, bad, notes = read_json_records(text)
    frame = pl.DataFrame(
        {"_source_file": [name] * len(good), "_source_row": [r for r, _, _ in good], "json": [orjson.dumps(o).decode() for _, _, o in good]},
        schema=RECORD_SCHEMA,
    )
    return frame, bad, notes


def extract(con: duckdb.DuckDBPyConnection, records: pl.DataFrame, fmt: str, settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(input frame, records that are not JSON objects) for Segment or SendGrid records."""
    if fmt == "segment":
        sql, paths, params = SEGMENT_SQL, SEGMENT_PATHS, {"pii": PII_PATCH, "attribute_paths": SEGMENT_ATTRIBUTE_PATHS}
    else:
        paths = sendgrid_paths(settings.email.campaign_fields, settings.email.contact_id_fields)
        sql, params = SENDGRID_SQL, {"drop": SENDGRID_DROP}
    con.register("records", records.to_arrow())
    try:
        out = pl.from_arrow(con.sql(sql, params={"paths": list(paths.values()), **params}).to_arrow_table())
    finally:
        con.unregister("records")
    not_objects = out.filter(pl.col("_json_type") != "OBJECT").select("_source_file", "_source_row", "_json_type", "_raw")
    out = out.filter(pl.col("_json_type") == "OBJECT")
    values = [pl.col("_values").list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(paths)]
    out = out.with_columns(values).drop("_values", "_json_type")
    if fmt == "segment":
        out = out.with_columns(
            pl.coalesce(pl.when(pl.col(c) != "").then(pl.col(c)) for c in parts).alias(name) for name, parts in SEGMENT_COALESCE.items()
        ).drop(*{c for parts in SEGMENT_COALESCE.values() for c in parts})
    return out, not_objects

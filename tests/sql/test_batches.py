"""Loading in batches: many delivery dates and files are read, canonicalised and validated
together (DuckDB parses the JSON), and the result is the same as loading one date at a time."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from journey_analytics import staging
from journey_analytics.generator import GeneratorConfig, generate
from journey_analytics.ingest.landing import SOURCES, delivery_dates
from journey_analytics.warehouse import connect, fetch

from tests.conftest import load, settings_for

TABLES = {
    "staging.stg_web__events": "event_key", "staging.stg_email__events": "event_key",
    "staging.stg_crm__activities": "event_key", "staging.stg_crm__contacts": "_source_file, _source_row",
    "staging.stg_store__transactions": "_source_file, _source_row", "staging.stg_store__visits": "_source_file, _source_row",
    "quarantine.rejected_rows": "_source_file, _source_row", "raw.landed_files": "_source_file",
}


def snapshot(settings) -> dict[str, pl.DataFrame]:
    with connect(settings, read_only=True) as con:
        return {t: fetch(con, f"select * from {t} order by {key}, _source_file, _source_row" if "_row" not in key and t.startswith("staging")
                         else f"select * from {t} order by {key}") for t, key in TABLES.items()}


def test_one_batch_many_batches_and_date_by_date_give_the_same_tables(tmp_path):
    generate(GeneratorConfig(customers=40, days=12, seed=5, start=dt.date(2025, 3, 1)), tmp_path / "gen")
    landing = tmp_path / "gen" / "landing"
    by_date = snapshot(load(landing, tmp_path / "by_date.duckdb"))
    for name, batch_bytes in (("one_batch", 10**12), ("tiny_batches", 1)):
        settings = settings_for(landing, tmp_path / f"{name}.duckdb")
        with connect(settings) as con:
            for source in SOURCES:
                loads = staging.ingest(con, source, delivery_dates(landing, [source]), settings, batch_bytes=batch_bytes)
                assert len(loads) == (1 if name == "one_batch" else len(delivery_dates(landing, [source])))
        batched = snapshot(settings)
        for table, frame in by_date.items():
            assert frame.height > 0 or table == "quarantine.rejected_rows"
            assert batched[table].equals(frame), (name, table)


SEGMENT = [
    {"type": "identify", "messageId": "m1", "timestamp": "2025-03-01T09:00:00Z", "anonymousId": "a1", "userId": "u1",
     "traits": {"email": "Ann@Example.com", "name": "Ann", "plan": "pro"},
     "context": {"userAgent": "UA/1", "page": {"url": "https://shop.example.com/?utm_source=news", "title": "Home"}}},
    {"type": "track", "event": "Order Completed", "messageId": "m2", "timestamp": "2025-03-01T09:05:00Z", "anonymousId": "a1",
     "properties": {"order_id": "O1", "revenue": 25.5, "currency": "gbp", "email": "ann@example.com", "items": [{"sku": "S1"}]},
     "context": {"traits": {"phone": "07700 900123", "tier": "gold"}}},
    {"type": "page", "messageId": "m3", "timestamp": "2025-03-01T09:06:00Z", "anonymousId": "a1", "properties": "not an object"},
]


def staged_without_lineage(q, file: str) -> list[dict]:
    rows = q("select * exclude (_source_file, _delivery_date) from staging.stg_web__events where _source_file like $f order by event_key",
             {"f": f"%{file}"})
    return rows.rows(named=True)


def test_a_file_with_a_broken_record_gives_the_same_rows_as_a_clean_one(landing, run):
    """A broken line sends its file through the record-by-record reader; its other records come
    out exactly as DuckDB reads them from a clean file."""
    clean = [json.dumps(m) for m in SEGMENT]
    landing.put("web", "2025-03-01", "clean.jsonl", "\n".join(clean) + "\n")
    broken = [json.dumps(dict(m, messageId=m["messageId"] + "b")) for m in SEGMENT]
    landing.put("web", "2025-03-02", "broken.jsonl", "\n".join([broken[0], '{"type": "page", "messageId": ', *broken[1:]]) + "\n")
    q = run()
    first, second = staged_without_lineage(q, "clean.jsonl"), staged_without_lineage(q, "broken.jsonl")
    assert [r["event_key"] for r in first] == ["web:m1", "web:m2", "web:m3"]
    for a, b in zip(first, second, strict=True):
        assert a["_source_row"] == b["_source_row"] - (1 if a["event_key"] != "web:m1" else 0)  # the broken line is record 2
        assert {k: v for k, v in a.items() if k not in ("event_key", "_row_key", "_source_row")} == \
               {k: v for k, v in b.items() if k not in ("event_key", "_row_key", "_source_row")}
    identify, order, page = first
    # attributes: traits and properties without emails and phones, title, user agent, event name
    assert json.loads(identify["attributes"]) == {"traits": {"name": "Ann", "plan": "pro"}, "title": "Home", "user_agent": "UA/1"}
    assert json.loads(order["attributes"]) == {"event": "Order Completed", "traits": {"tier": "gold"},
                                               "properties": {"order_id": "O1", "revenue": 25.5, "currency": "gbp", "items": [{"sku": "S1"}]}}
    assert json.loads(page["attributes"]) == {}
    assert (order["revenue"], order["currency"], order["order_id"]) == (25.5, "GBP", "O1")
    assert identify["email_hash"] is not None and order["email_hash"] == identify["email_hash"] and order["phone_hash"] is not None
    assert identify["campaign_source"] == "news"
    rejected = q("select _source_file, _source_row, field from quarantine.rejected_rows").rows()
    assert rejected == [("web/2025-03-02/broken.jsonl", 2, "(record)")]
    stored = q("select string_agg(attributes, '') || string_agg(coalesce(raw_record, ''), '') as text from staging.stg_web__events, quarantine.rejected_rows")
    assert "example.com" not in stored["text"][0].lower() and "07700" not in stored["text"][0]


def test_the_time_window_follows_each_rows_delivery_date(landing, tmp_path):
    """Two delivery dates in one batch: the same time is believable for one and not the other."""
    late = "2025-03-04T10:00:00Z"  # max_days_after_delivery = 2: after 2025-03-04 00:00 for a file of 2025-03-01
    def line(mid):
        return json.dumps({"type": "page", "messageId": mid, "timestamp": late, "anonymousId": "a1"})
    landing.put("web", "2025-03-01", "early.jsonl", line("early") + "\n")
    landing.put("web", "2025-03-03", "later.jsonl", line("later") + "\n")
    settings = settings_for(landing.root, tmp_path / "w.duckdb")
    with connect(settings) as con:
        loads = staging.ingest(con, "web", [dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)], settings)
        # one batch; what it wrote, as the ingestion asset reports it
        assert loads == [staging.BatchSummary([dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)],
                                              files=2, staged={"events": 1}, quarantined=1, load_errors=0)]
        staged = fetch(con, "select event_key from staging.stg_web__events")["event_key"].to_list()
        reasons = fetch(con, "select _source_file, reason from quarantine.rejected_rows").rows()
    assert staged == ["web:later"]
    assert reasons == [("web/2025-03-01/early.jsonl",
                        "timestamp 2025-03-04 10:00:00 is in the future for a file delivered on 2025-03-01 (latest allowed 2025-03-04 00:00)")]

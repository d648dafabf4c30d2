"""Loading in batches: many delivery dates and files are read, canonicalised and validated
together (DuckDB parses the JSON), and the result is the same as loading one date at a time."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from journey_analytics import staging
from journey_analytics.generator import GeneratorConfig, generate
from journey_analytics.ingest import landing as landing_module
from journey_analytics.ingest.landing import SOURCES, chunks, delivery_dates, discover
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
    # some dates deliver several files of a source: a batch of them is read in several chunks
    assert max(len(discover(landing, source, day)) for source in SOURCES for day in delivery_dates(landing, [source])) > 1
    # one batch in one chunk; a batch per date; one batch, each file a chunk of its own (a byte
    # budget of 1: every file is over it), all written in the batch's one transaction
    for name, batch_bytes, chunk_bytes in (("one_batch", 10**12, 10**12), ("tiny_batches", 1, 10**12), ("one_file_chunks", 10**12, 1)):
        settings = settings_for(landing, tmp_path / f"{name}.duckdb")
        with connect(settings) as con:
            for source in SOURCES:
                dates = delivery_dates(landing, [source])
                loads = staging.ingest(con, source, dates, settings, batch_bytes=batch_bytes, chunk_bytes=chunk_bytes)
                assert len(loads) == (len(dates) if name == "tiny_batches" else 1)
                assert sum(load.files for load in loads) == sum(len(discover(landing, source, day)) for day in dates)
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


def test_chunks_cut_at_the_byte_budget_and_the_file_count():
    # weights 5 5 20 1 1 1, budget 10 bytes, 2 files: a and b fill 10; c alone is over the budget; d, e
    # reach the file count; f starts the last chunk
    assert chunks(list("abcdef"), [5, 5, 20, 1, 1, 1], budget=10, most=2) == [["a", "b"], ["c"], ["d", "e"], ["f"]]
    assert chunks(list("abc"), [4, 4, 4], budget=10) == [["a", "b"], ["c"]]
    assert chunks([], [], budget=10, most=2) == []


def test_a_broken_file_in_a_later_chunk_gives_the_rows_of_one_chunk(landing, tmp_path):
    """DuckDB's JSON reader fails on the broken file before the record-by-record reader takes over:
    read in the batch's transaction on the same connection, that failure would abort it."""
    clean = [json.dumps(m) for m in SEGMENT]
    broken = [json.dumps(dict(m, messageId=m["messageId"] + "b")) for m in SEGMENT]
    landing.put("web", "2025-03-01", "a_clean.jsonl", "\n".join(clean) + "\n")
    landing.put("web", "2025-03-01", "b_broken.jsonl", "\n".join([broken[0], '{"type": "page", "messageId": ', *broken[1:]]) + "\n")
    tables = {}
    for name, chunk_bytes in (("one_chunk", 10**9), ("file_by_file", 1)):
        settings = settings_for(landing.root, tmp_path / f"{name}.duckdb")
        with connect(settings) as con:
            loads = staging.ingest(con, "web", [dt.date(2025, 3, 1)], settings, chunk_bytes=chunk_bytes)
            assert loads == [staging.BatchSummary([dt.date(2025, 3, 1)], files=2, staged={"events": 6}, quarantined=1, load_errors=0)]
            tables[name] = (fetch(con, "select * from staging.stg_web__events order by event_key"),
                            fetch(con, "select * from quarantine.rejected_rows order by _source_file, _source_row"),
                            fetch(con, "select * from raw.landed_files order by _source_file"))
    for one, each in zip(tables["one_chunk"], tables["file_by_file"], strict=True):
        assert one.equals(each)


def test_a_batch_in_chunks_is_written_whole_or_not_at_all(landing, tmp_path, monkeypatch):
    """A failure while reading a later chunk leaves the batch's dates as they were before it."""
    for day, ids in (("2025-03-01", ("m1", "m2")), ("2025-03-02", ("m3",))):
        for i in ids:
            landing.put("web", day, f"{i}.jsonl", json.dumps({"type": "page", "messageId": i, "timestamp": f"{day}T09:00:00Z", "anonymousId": "a1"}) + "\n")
    settings = settings_for(landing.root, tmp_path / "w.duckdb")
    dates = [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]
    with connect(settings) as con:
        staging.ingest(con, "web", dates, settings)
        before = fetch(con, "select event_key, _source_file from staging.stg_web__events order by event_key")
        assert before["event_key"].to_list() == ["web:m1", "web:m2", "web:m3"]
        # a new file sorted first in 2025-03-02: its chunk is written before m3's fails
        landing.put("web", "2025-03-02", "m0.jsonl", json.dumps({"type": "page", "messageId": "m0", "timestamp": "2025-03-02T10:00:00Z", "anonymousId": "a1"}) + "\n")
        read = landing_module.load_files
        seen = []

        def failing_on_the_fourth_chunk(*args, **kwargs):
            seen.append(args[2])
            if len(seen) == 4:
                raise OSError("disk went away")
            return read(*args, **kwargs)

        monkeypatch.setattr(staging, "load_files", failing_on_the_fourth_chunk)
        with pytest.raises(OSError, match="disk went away"):
            staging.ingest(con, "web", dates, settings, batch_bytes=1, chunk_bytes=1)  # a batch per date, a chunk per file
        # 2025-03-01's batch (m1, m2) was written again; 2025-03-02's wrote m0 and failed on m3
        assert [[f.rel_path.split("/")[-1] for f in files] for files in seen] == [["m1.jsonl"], ["m2.jsonl"], ["m0.jsonl"], ["m3.jsonl"]]
        after = fetch(con, "select event_key, _source_file from staging.stg_web__events order by event_key")
        files = fetch(con, "select _source_file from raw.landed_files order by _source_file")["_source_file"].to_list()
    assert after.equals(before)
    assert files == ["web/2025-03-01/m1.jsonl", "web/2025-03-01/m2.jsonl", "web/2025-03-02/m3.jsonl"]

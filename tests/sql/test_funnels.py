"""Funnel stages: classification, windowFunnel equivalence, and hand-worked journeys."""

from __future__ import annotations

import datetime as dt
import json
import random

import polars as pl

from journey_analytics import stages
from journey_analytics.settings import load_settings
from journey_analytics.warehouse import build_model, connect, fetch, write_table

from tests.conftest import load


def clickhouse_window_funnel(window: int, events: list[tuple[int, int]], levels: int) -> int:
    """A port of ClickHouse's windowFunnel (default mode) for one unit: events are (timestamp,
    condition 1..levels); pairs are sorted by timestamp, then condition."""
    starts: list[int | None] = [None] * levels
    for ts, cond in sorted(events):
        i = cond - 1
        if i == 0:
            starts[0] = ts
        elif starts[i - 1] is not None and ts <= starts[i - 1] + window:
            starts[i] = starts[i - 1]
    reached = [i + 1 for i in range(levels) if starts[i] is not None]
    return max(reached, default=0)


def test_funnel_reach_equals_clickhouse_window_funnel_on_random_events(tmp_path):
    rng = random.Random(5)
    rows = []
    for unit in range(400):
        for n in range(rng.randint(1, 12)):
            ts = rng.randint(0, 40) * 86400 // 4 + rng.choice([0, 0, 1])  # many ties in time
            rows.append({"stage_model": "m", "stage": f"s{(c := rng.randint(1, 4))}", "stage_index": c, "person_id": f"p{unit}",
                         "journey_id": f"j{unit}", "event_key": f"e{unit}:{n}",
                         "occurred_at": dt.datetime(2025, 1, 1) + dt.timedelta(seconds=ts), "sequence_number": n + 1})
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill",
                             stages={"window_days": 3, "active_models": ["awareness_consideration_purchase_loyalty"]})
    with connect(settings) as con:
        write_table(con, "stages.event_stages", pl.DataFrame(rows).with_columns(pl.col("occurred_at").cast(pl.Datetime("us"))))
        stages.build_funnel_levels(con, settings)
        ours = dict(fetch(con, "select unit_id, max(level) from stages.funnel_levels group by 1").rows())
    window = 3 * 86400
    for unit in {r["journey_id"] for r in rows}:
        events = [(int((r["occurred_at"] - dt.datetime(2025, 1, 1)).total_seconds()), r["stage_index"]) for r in rows if r["journey_id"] == unit]
        assert ours.get(unit, 0) == clickhouse_window_funnel(window, events, 4), unit


def funnel(landing, tmp_path, **stage_settings):
    settings = load(landing.root, tmp_path / "w.duckdb", downstream=True, stages=stage_settings or None)
    with connect(settings) as con:
        for model in stages.MODELS:
            stages.build_stage_model(con, model, settings)
        build_model(con, "marts", "funnel_conversion")
        return (fetch(con, "select unit_id, stage, reached_at from stages.unit_stages order by unit_id, stage_index"),
                fetch(con, "select * from marts.funnel_conversion where breakdown = 'all' order by stage_model, stage_index"))


def web(message_id, ts, event=None, url="https://shop.example.com/", user="u1", props=None):
    m = {"type": "track" if event else "page", "messageId": message_id, "timestamp": ts, "anonymousId": "d1", "userId": user,
         "context": {"page": {"url": url}}}
    if event:
        m["event"] = event
        m["properties"] = props or {}
    return json.dumps(m)


def email_click_then_store_purchase(landing, purchase_day: str):
    landing.put("crm", "2025-03-01", "contacts.csv", "contact_id,email,loyalty_id\nC1,ann@example.com,L1\n")
    # an email click lands with cid=C1 (awareness: campaign landing), then a product view (consideration)
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join([
        web("m1", "2025-03-01T09:00:00Z", url="https://shop.example.com/?cid=C1&utm_medium=email&utm_source=news", user=None),
        web("m2", "2025-03-01T09:01:00Z", event="Product Viewed", user=None),
        web("m3", "2025-03-01T09:02:00Z", event="Product Added", user=None),
    ]).replace('"userId": null, ', "") + "\n")
    # then a till purchase with the loyalty card (skipping nothing: decision was the cart)
    landing.put("store", purchase_day, "transactions.csv", "transaction_id,line_number,store_id,occurred_at,loyalty_id,quantity,unit_price\n"
                f"T1,1,S1,{purchase_day} 12:00:00,L1,1,20\n")


def test_an_email_click_then_a_store_purchase_inside_the_window_converts(landing, tmp_path):
    email_click_then_store_purchase(landing, "2025-03-20")  # 19 days after the click
    reached, conversion = funnel(landing, tmp_path)
    assert reached["stage"].to_list() == ["awareness", "consideration", "decision", "purchase"]
    purchase = conversion.filter(pl.col("stage") == "purchase").row(0, named=True)
    assert purchase["entered"] == 1 and purchase["conversion_from_top"] == 1.0


def test_a_store_purchase_outside_the_window_does_not_convert(landing, tmp_path):
    email_click_then_store_purchase(landing, "2025-04-05")  # 35 days after the click (journey gap 30 days too)
    reached, conversion = funnel(landing, tmp_path)
    decision = conversion.filter(pl.col("stage") == "decision").row(0, named=True)
    assert decision["entered"] == 1 and decision["advanced"] == 0
    assert conversion.filter(pl.col("stage") == "purchase").height == 0


def test_a_skipped_stage_counts_only_when_allowed(landing, tmp_path):
    # awareness, then straight to a purchase: no consideration or decision event
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join([
        web("m1", "2025-03-01T09:00:00Z", url="https://shop.example.com/?utm_medium=cpc&utm_source=google"),
        web("m2", "2025-03-01T09:05:00Z", event="Order Completed", props={"order_id": "O1", "revenue": 30}),
    ]) + "\n")
    reached, _ = funnel(landing, tmp_path)
    assert reached["stage"].to_list() == ["awareness"]
    reached, conversion = funnel(landing, tmp_path, allow_skipped=True)
    assert reached["stage"].to_list() == ["awareness", "consideration", "decision", "purchase"]


def test_two_events_in_the_same_second_count_as_in_order(landing, tmp_path):
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join([
        web("m2", "2025-03-01T09:00:00Z", event="Product Viewed"),
        web("m1", "2025-03-01T09:00:00Z", url="https://shop.example.com/?utm_medium=cpc&utm_source=google"),
    ]) + "\n")
    reached, _ = funnel(landing, tmp_path)
    assert reached["stage"].to_list() == ["awareness", "consideration"]


def test_every_preset_stage_model_builds_consistent_marts(tmp_path):
    from journey_analytics.settings import PROJECT_ROOT
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb")
    names = sorted(settings.stages.models)
    assert len(names) == 5
    sample = load(PROJECT_ROOT / "data" / "sample" / "landing", tmp_path / "w.duckdb", downstream=True, stages={"active_models": names})
    with connect(sample) as con:
        for model in stages.MODELS:
            stages.build_stage_model(con, model, sample)
        build_model(con, "marts", "funnel_conversion")
        marts = fetch(con, "select * from marts.funnel_conversion")
    for name in names:
        rows = marts.filter((pl.col("stage_model") == name) & (pl.col("breakdown") == "all")).sort("stage_index")
        assert rows["entered"][0] > 0, name
        # counts never rise down the stages, and each stage's entrants are the previous stage's advancers
        assert all(a >= b for a, b in zip(rows["entered"], rows["entered"][1:])), name
        assert rows["advanced"][:-1].to_list() == rows["entered"][1:].to_list(), name
        assert rows["conversion_from_top"].is_between(0, 1).all()
        # every breakdown sums back to the total
        for breakdown in ("cohort_week", "cohort_month", "first_touch_channel", "last_channel_before_purchase"):
            part = marts.filter((pl.col("stage_model") == name) & (pl.col("breakdown") == breakdown) & (pl.col("stage_index") == 1))
            assert part["entered"].sum() == rows["entered"][0], (name, breakdown)

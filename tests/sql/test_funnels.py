"""Funnel stages: classification, windowFunnel equivalence, and hand-worked journeys."""

from __future__ import annotations

import datetime as dt
import json
import random

import polars as pl
import pytest

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


def strict_funnel(window: int, events: list[tuple[int, int, int]], levels: int, skip: bool) -> int:
    """Brute force for order_mode = 'strict': from every possible opening event walk forward;
    repeats of the current stage are allowed, the next stage (or, with skipping, any later one)
    advances within the window, anything else ends the chain. Events are (timestamp, stage, seq)."""
    ordered = sorted(events)
    best = 0
    for i, (start, stage, _) in enumerate(ordered):
        if stage != 1 and not skip:
            continue
        level = stage
        for ts, cond, _ in ordered[i + 1:]:
            if cond == level:
                continue
            if (cond == level + 1 or (skip and cond > level)) and ts <= start + window:
                level = cond
                continue
            break
        best = max(best, level)
    return best


def any_order_funnel(window: int, events: list[tuple[int, int, int]], levels: int, skip: bool) -> int:
    """Brute force for order_mode = 'any': the most stages 1..k all present in one window opening at an event."""
    best = 0
    for start, _, _ in events:
        inside = {c for ts, c, _ in events if start <= ts <= start + window}
        covered = {j for c in inside for j in range(1, c + 1)} if skip else inside
        k = 0
        while k + 1 in covered:
            k += 1
        best = max(best, k)
    return best


def random_stage_events(seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for unit in range(400):
        for n in range(rng.randint(1, 12)):
            ts = rng.randint(0, 40) * 86400 // 4 + rng.choice([0, 0, 1])  # many ties in time
            rows.append({"stage_model": "awareness_consideration_purchase_loyalty", "stage": f"s{(c := rng.randint(1, 4))}",
                         "stage_index": c, "person_id": f"p{unit}", "journey_id": f"j{unit}", "event_key": f"e{unit}:{n}",
                         "occurred_at": dt.datetime(2025, 1, 1) + dt.timedelta(seconds=ts), "sequence_number": n + 1})
    return rows


def reach_per_unit(tmp_path, rows: list[dict], **stage_settings) -> dict[str, int]:
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill",
                             stages={"window_days": 3, "active_models": ["awareness_consideration_purchase_loyalty"], **stage_settings})
    with connect(settings) as con:
        stages.write_reference_tables(con, settings)
        write_table(con, "stages.event_stages", pl.DataFrame(rows).with_columns(pl.col("occurred_at").cast(pl.Datetime("us"))))
        stages.build_funnel_levels(con, settings)
        return dict(fetch(con, "select unit_id, max(level) from stages.funnel_levels group by 1").rows())


def unit_events(rows: list[dict], unit: str) -> list[tuple[int, int, int]]:
    return [(int((r["occurred_at"] - dt.datetime(2025, 1, 1)).total_seconds()), r["stage_index"], r["sequence_number"])
            for r in rows if r["journey_id"] == unit]


def test_event_stages_on_hand_worked_events(tmp_path):
    """Rules matched by channel, touchpoint type, occurrence and score, with missing channels and
    scores, overlapping rules of two stages, and two persons' events of one profile."""
    model = {"stages": ["a", "b", "c"], "rules": [
        {"stage": "a", "activities": ["viewed_page"], "channels": ["email"]},
        {"stage": "a", "activities": ["viewed_page"], "max_occurrence": 1},
        {"stage": "b", "activities": ["viewed_page"], "touchpoint_types": ["product"]},
        {"stage": "c", "activities": ["responded_to_survey"], "min_score": 9},
        {"stage": "b", "activities": ["responded_to_survey"], "max_score": 6},
        {"stage": "c", "activities": ["completed_order"], "min_occurrence": 2}]}
    # (key, person, activity, channel, touchpoint type, occurrence, score: the stream's attributes.score)
    events = [
        ("e1", "p1", "viewed_page", "email", None, 1, None),  # email rule and first view: a
        ("e2", "p1", "viewed_page", None, None, 2, None),  # no rule
        ("e3", "p1", "viewed_page", None, "product", 3, None),  # product page: b
        ("e4", "p1", "viewed_page", "email", "product", 4, None),  # a and b: the furthest, b
        ("e5", "p1", "responded_to_survey", None, None, 1, 10.0),  # promoter: c
        ("e6", "p1", "responded_to_survey", None, None, 2, 7.0),  # passive: no rule
        ("e7", "p1", "responded_to_survey", None, None, 3, None),  # no score: no rule
        ("e8", "p1", "responded_to_survey", None, None, 4, 3.0),  # detractor: b
        ("e9", "p1", "completed_order", "store", None, 1, None),  # first order: no rule
        ("e10", "p1", "completed_order", "store", None, 2, None),  # repeat order: c
        ("q1", "p2", "viewed_page", "email", None, 1, None),  # e1's profile: a
        ("q2", "p2", "viewed_page", None, None, 2, 10.0),  # a score no viewed_page rule reads: no rule
    ]
    stream = pl.DataFrame(
        [{"person_id": person, "journey_id": f"{person}:1", "event_key": key,
          "occurred_at": dt.datetime(2025, 1, 1) + dt.timedelta(hours=i), "sequence_number": i + 1, "activity": activity,
          "channel": channel, "touchpoint_type": tp_type, "touchpoint": None, "activity_occurrence": occurrence, "score": score}
         for i, (key, person, activity, channel, tp_type, occurrence, score) in enumerate(events)],
        schema={"person_id": pl.String, "journey_id": pl.String, "event_key": pl.String, "occurred_at": pl.Datetime("us"),
                "sequence_number": pl.Int64, "activity": pl.String, "channel": pl.String, "touchpoint_type": pl.String,
                "touchpoint": pl.String, "activity_occurrence": pl.Int64, "score": pl.Float64})
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill",
                             stages={"active_models": ["t", "default"], "models": {"t": model}})
    with connect(settings) as con:
        write_table(con, "journeys.customer_stream", stream)
        stages.build_stage_model(con, "event_stages", settings)
        got = dict(fetch(con, "select event_key, stage from stages.event_stages where stage_model = 't'").rows())
        default = dict(fetch(con, "select event_key, stage from stages.event_stages where stage_model = 'default'").rows())
    assert got == {"e1": "a", "e3": "b", "e4": "b", "e5": "c", "e8": "b", "e10": "c", "q1": "a"}
    # the default model on the same events: first views and paid landings are awareness, a promoter
    # is advocacy, a first order purchase and a repeat order retention
    assert default == {"e1": "awareness", "e4": "awareness", "e5": "advocacy", "e9": "purchase", "e10": "retention",
                       "q1": "awareness"}


def test_funnel_reach_equals_clickhouse_window_funnel_on_random_events(tmp_path):
    rows = random_stage_events(5)
    ours = reach_per_unit(tmp_path, rows)
    for unit in {r["journey_id"] for r in rows}:
        events = [(ts, c) for ts, c, _ in unit_events(rows, unit)]
        assert ours.get(unit, 0) == clickhouse_window_funnel(3 * 86400, events, 4), unit


@pytest.mark.parametrize("mode, skip", [("strict", False), ("strict", True), ("any", False), ("any", True)])
def test_strict_and_any_order_reach_equals_brute_force_on_random_events(tmp_path, mode, skip):
    rows = random_stage_events(9)
    ours = reach_per_unit(tmp_path, rows, order_mode=mode, allow_skipped=skip)
    brute = strict_funnel if mode == "strict" else any_order_funnel
    for unit in {r["journey_id"] for r in rows}:
        assert ours.get(unit, 0) == brute(3 * 86400, unit_events(rows, unit), 4, skip), unit


def test_order_modes_on_a_hand_worked_unit(tmp_path):
    # consideration, awareness, decision-like stage 3, then stage 2 again, then stage 4: days 0, 1, 2, 2.5, 3 (3-day window)
    day = 86400
    stamps = [(0, 2), (day, 1), (2 * day, 3), (2 * day + day // 2, 2), (3 * day, 4)]
    rows = [{"stage_model": "awareness_consideration_purchase_loyalty", "stage": f"s{c}", "stage_index": c, "person_id": "p",
             "journey_id": "j", "event_key": f"e{n}", "occurred_at": dt.datetime(2025, 1, 1) + dt.timedelta(seconds=ts),
             "sequence_number": n + 1} for n, (ts, c) in enumerate(stamps)]
    # ordered: awareness (day 1) -> consideration (day 2.5) -> loyalty needs purchase first: stops at 2
    assert reach_per_unit(tmp_path, rows)["j"] == 2
    # strict: awareness (day 1) then stage 3 (skips 2) breaks the chain: 1
    assert reach_per_unit(tmp_path, rows, order_mode="strict")["j"] == 1
    # any order: stages 1-4 all fall within days 0..3 (window opens day 0, closes day 3): 4
    assert reach_per_unit(tmp_path, rows, order_mode="any")["j"] == 4


def funnel(landing, tmp_path, **stage_settings):
    settings = load(landing.root, tmp_path / "w.duckdb", downstream=True, stages=stage_settings or None)
    with connect(settings) as con:
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
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill")
    with connect(settings, read_only=True) as con:
        # the email landing and the till sale are the journey's touches (the product view and cart are inside the site)
        credit = dict(fetch(con, "select model || ':' || value, conversions from marts.attribution where dimension = 'channel'").rows())
        cart = fetch(con, "select * from marts.abandonment where kind = 'cart' and breakdown = 'all'").row(0, named=True)
    assert credit["first_touch:email"] == 1 and credit["last_touch:store"] == 1 and credit["linear:email"] == 0.5
    assert (cart["purchased"], cart["abandoned"], cart["abandonment_rate"]) == (1, 0, 0.0)


def test_a_store_purchase_outside_the_window_does_not_convert(landing, tmp_path):
    email_click_then_store_purchase(landing, "2025-04-05")  # 35 days after the click (journey gap 30 days too)
    reached, conversion = funnel(landing, tmp_path)
    decision = conversion.filter(pl.col("stage") == "decision").row(0, named=True)
    assert decision["entered"] == 1 and decision["advanced"] == 0
    assert conversion.filter(pl.col("stage") == "purchase").height == 0
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill")
    with connect(settings, read_only=True) as con:
        dropped = fetch(con, "select * from marts.funnel_drop_off").row(0, named=True)
        cart = fetch(con, "select * from marts.abandonment where kind = 'cart' and breakdown = 'all'").row(0, named=True)
    # stopped at decision; its last touch was the cart add at 09:02; the data ends at the till sale (5 April 12:00)
    assert (dropped["stopped_stage"], dropped["last_activity"], dropped["still_in_window"]) == ("decision", "added_to_cart", False)
    assert dropped["hours_since_last_touch"] == pytest.approx(35 * 24 + 3 - 2 / 60)
    assert (cart["purchased"], cart["abandoned"], cart["abandonment_rate"]) == (0, 1, 1.0)


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

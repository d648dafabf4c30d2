"""Marts on small hand-worked data: attribution (with a Markov chain solved by hand), churn and
censoring, customer summary, retention cohorts, paths, transitions, stage spells, drivers."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import numpy as np
import polars as pl
import pytest

from journey_analytics import journeys, marts, stages
from journey_analytics.settings import load_settings
from journey_analytics.warehouse import connect, fetch, write_table

T0 = dt.datetime(2025, 1, 1)
STREAM_SCHEMA = {
    "person_id": pl.String, "event_key": pl.String, "sequence_number": pl.Int64, "occurred_at": pl.Datetime("us"),
    "journey_id": pl.String, "activity": pl.String, "channel": pl.String, "touchpoint_type": pl.String, "touchpoint": pl.String,
    "campaign_name": pl.String, "revenue": pl.Float64,
}


def stream(rows: list[tuple]) -> pl.DataFrame:
    """(person, day offset or datetime, activity, channel[, revenue[, campaign[, journey]]]) -> a minimal customer stream."""
    out = []
    for person, when, activity, channel, *rest in rows:
        revenue = rest[0] if len(rest) > 0 else None
        campaign = rest[1] if len(rest) > 1 else None
        journey = rest[2] if len(rest) > 2 else f"{person}:1"
        at = when if isinstance(when, dt.datetime) else T0 + dt.timedelta(days=when)
        out.append({"person_id": person, "occurred_at": at, "journey_id": journey, "activity": activity, "channel": channel,
                    "touchpoint_type": None, "touchpoint": None, "campaign_name": campaign, "revenue": revenue})
    frame = pl.DataFrame(out, schema={k: v for k, v in STREAM_SCHEMA.items() if k not in ("event_key", "sequence_number")})
    frame = frame.sort("person_id", "occurred_at", maintain_order=True).with_columns(
        pl.int_range(1, pl.len() + 1).over("person_id").cast(pl.Int64).alias("sequence_number"))
    frame = frame.with_columns((pl.col("person_id") + ":" + pl.col("sequence_number").cast(pl.String)).alias("event_key"))
    return frame.select(list(STREAM_SCHEMA)).with_columns(
        pl.int_range(1, pl.len() + 1).over("person_id", "activity").cast(pl.Int64).alias("activity_occurrence"),
        pl.col("journey_id").rank("dense").over("person_id").cast(pl.Int64).alias("journey_number"),
        pl.lit(None, pl.Float64).alias("score"),
        pl.col("channel").shift(1).over("person_id", order_by="sequence_number").alias("previous_channel"),
        _journey_starts())


def _journey_starts() -> pl.Expr:
    """A journey starts at its person's first event and wherever the journey id changes."""
    before = pl.col("journey_id").shift(1).over("person_id", order_by="sequence_number")
    return (before.is_null() | (before != pl.col("journey_id"))).alias("is_journey_start")


def build(tmp_path, frame: pl.DataFrame, tables: list[tuple[str, str]], stream_ranges: list | None = None, **overrides):
    """The stages and `tables` built on the stream `frame`, as if the stream had been built in the
    ranges of person ids that `stream_ranges` starts (their lowest ids; None: one part)."""
    settings = load_settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill", **overrides)
    with connect(settings) as con:
        write_table(con, "journeys.customer_stream", frame)
        if stream_ranges:
            journeys.record_stream_ranges(con, stream_ranges)
        write_table(con, "journeys.purchase_activities", pl.DataFrame({"activity": ["completed_order"]}))
        for name in stages.MODELS:
            stages.build_stage_model(con, name, settings)
        for layer, name in tables:
            marts.build_mart_model(con, layer, name, settings)
    return lambda sql: table_of(settings, sql)


def table_of(settings, sql):
    with connect(settings, read_only=True) as con:
        return fetch(con, sql)


# --- attribution ------------------------------------------------------------------------------

def test_markov_removal_effects_match_a_chain_solved_by_hand():
    # journeys: A > B > conversion, A > null, B > conversion
    transitions = pl.DataFrame({"from_state": ["(start)", "(start)", "A", "A", "B"], "to_state": ["A", "B", "B", "(null)", "(conversion)"],
                                "transitions": [2, 1, 1, 1, 2]})
    effects = {r["state"]: r for r in marts.removal_effects(transitions).to_dicts()}
    # P(conversion) = 2/3 * 1/2 + 1/3 = 2/3; without A: 1/3 (effect 1/2); without B: 0 (effect 1)
    assert effects["A"]["conversion_probability"] == pytest.approx(2 / 3)
    assert effects["A"]["conversion_probability_without"] == pytest.approx(1 / 3)
    assert effects["A"]["removal_effect"] == pytest.approx(0.5)
    assert effects["B"]["removal_effect"] == pytest.approx(1.0)


def resolve_without(states, probabilities, removed):
    """Direct solve with one state turned into a dead end (the textbook definition)."""
    n = len(states)
    q, r = probabilities[:, :n].copy(), probabilities[:, n].copy()
    if removed is not None:
        q[:, removed] = 0.0
        r[removed] = 0.0
    return np.linalg.solve(np.eye(n) - q, r)[0]


def test_markov_removal_effects_equal_a_direct_solve_on_random_chains_with_cycles():
    rng = random.Random(3)
    for _ in range(20):
        names = ["(start)", "a", "b", "c", "d"]
        rows = []
        for src, dst in itertools.product(names, names[1:] + ["(conversion)", "(null)"]):
            if src != dst and rng.random() < 0.6:
                rows.append((src, dst, rng.randint(1, 9)))
        rows += [(s, "(null)", 1) for s in names]  # every state can leave the chain
        frame = pl.DataFrame(rows, schema=["from_state", "to_state", "transitions"], orient="row")
        frame = frame.group_by("from_state", "to_state").agg(pl.col("transitions").sum())
        effects = {r["state"]: r["removal_effect"] for r in marts.removal_effects(frame).to_dicts()}
        counts = np.zeros((5, 6))
        for src, dst, k in frame.iter_rows():
            if dst != "(null)":
                counts[names.index(src), 5 if dst == "(conversion)" else names.index(dst)] += k
        totals = frame.group_by("from_state").agg(pl.col("transitions").sum())
        out = np.array([dict(totals.iter_rows()).get(s, 0) for s in names], dtype=float)
        probabilities = counts / out[:, None]
        base = resolve_without(names, probabilities, None)
        for i, state in enumerate(names[1:], start=1):
            if state in effects:
                assert effects[state] == pytest.approx(1 - resolve_without(names, probabilities, i) / base, abs=1e-9)


ATTRIBUTION = [("journeys", "customer_activity"), ("journeys", "touches"), ("journeys", "attribution_transitions"),
               ("journeys", "markov_removal_effects"), ("marts", "attribution"), ("journeys", "journey_paths"), ("marts", "path_variants"),
               ("marts", "channel_transitions")]


def attribution_journeys():
    return stream([
        # x: paid search (day 0), email (day 7), store sale (day 14, 100): converts
        ("x", 0, "viewed_page", "paid_search", None, "spring"),
        ("x", 0.01, "viewed_product", "internal"),
        ("x", 7, "opened_email", "email", None, "news"),
        ("x", 14, "completed_order", "store", 100.0),
        # y: one email open, never buys
        ("y", 0, "opened_email", "email", None, "news"),
        # z: email (day 0), store sale a day later (50)
        ("z", 0, "opened_email", "email", None, "news"),
        ("z", 1, "completed_order", "store", 50.0),
    ])


def test_attribution_models_on_hand_worked_journeys(tmp_path):
    q = build(tmp_path, attribution_journeys(), ATTRIBUTION)
    got = {(r["model"], r["value"]): r for r in q("select * from marts.attribution where dimension = 'channel'").to_dicts()}
    c = lambda model, value: got[(model, value)]["conversions"]  # noqa: E731
    # first / last touch
    assert (c("first_touch", "paid_search"), c("first_touch", "email"), c("first_touch", "store")) == (1, 1, 0)
    assert (c("last_touch", "store"), c("last_touch", "email")) == (2, 0)
    # linear: x gives 1/3 to each of three, z 1/2 to each of two
    assert c("linear", "email") == pytest.approx(1 / 3 + 1 / 2)
    # position based 40/20/40 for x; two touches split 50/50 for z
    assert c("position_based", "paid_search") == pytest.approx(0.4)
    assert c("position_based", "email") == pytest.approx(0.2 + 0.5)
    assert c("position_based", "store") == pytest.approx(0.4 + 0.5)
    # time decay (7-day half-life): x's weights 1/4, 1/2, 1 (14, 7, 0 days before); z's 2^(-1/7) and 1
    z_email = 2 ** (-1 / 7) / (2 ** (-1 / 7) + 1)
    assert c("time_decay", "paid_search") == pytest.approx(0.25 / 1.75)
    assert c("time_decay", "email") == pytest.approx(0.5 / 1.75 + z_email)
    assert got[("time_decay", "store")]["revenue"] == pytest.approx(100 / 1.75 + 50 * (1 - z_email))
    # Markov by hand: start -> paid_search 1/3, email 2/3; paid_search -> email; email -> store 2/3, null 1/3;
    # P = 2/3. Without paid_search 4/9 (effect 1/3), without email or store 0 (effect 1): credits 2/7, 6/7, 6/7
    assert c("markov", "paid_search") == pytest.approx(2 / 7)
    assert c("markov", "email") == pytest.approx(6 / 7)
    assert c("markov", "store") == pytest.approx(6 / 7)
    sums = q("select model, dimension, sum(conversions) as s, sum(revenue) as r from marts.attribution group by all")
    assert sums["s"].to_list() == pytest.approx([2.0] * 12) and sums["r"].to_list() == pytest.approx([150.0] * 12)
    by_campaign = dict(q("select value, conversions from marts.attribution where dimension = 'campaign' and model = 'first_touch'").rows())
    assert by_campaign == {"spring": 1.0, "news": 1.0, "(none)": 0.0}


def test_paths_and_transitions_on_hand_worked_journeys(tmp_path):
    q = build(tmp_path, attribution_journeys(), ATTRIBUTION)
    paths = q("select path, journeys, conversions from marts.path_variants where path_type = 'channel' and not collapsed order by path")
    assert paths.rows() == [("email", 1, 0), ("email > store", 1, 1), ("paid_search > email > store", 1, 1)]
    edges = {(r[0], r[1], r[2]): r[3] for r in q("select step, from_channel, to_channel, transitions from marts.channel_transitions").rows()}
    assert edges == {(0, "(start)", "paid_search"): 1, (0, "(start)", "email"): 2, (1, "paid_search", "email"): 1,
                     (2, "email", "store"): 1, (1, "email", "store"): 1, (3, "store", "(conversion)"): 1,
                     (2, "store", "(conversion)"): 1, (1, "email", "(no conversion)"): 1}
    hours = q("select median_hours from marts.channel_transitions where step = 1 and from_channel = 'paid_search'")
    assert hours.item() == pytest.approx(7 * 24)


def test_long_paths_keep_their_ends_and_repeats_collapse(tmp_path):
    channels = ["email", "email", "paid_search", "display", "email", "referral", "display", "direct", "email", "email", "paid_social", "store"]
    rows = [("p", n, "viewed_page" if ch not in ("email", "store") else ("opened_email" if ch == "email" else "completed_order"), ch)
            for n, ch in enumerate(channels)]
    q = build(tmp_path, stream(rows), ATTRIBUTION)
    paths = dict(q("select collapsed, path from marts.path_variants where path_type = 'channel'").rows())
    assert paths[False] == "email > email > paid_search > display > email > ... > direct > email > email > paid_social > store"
    assert paths[True] == "email > paid_search > display > email > referral > display > direct > email > paid_social > store"


# --- churn, customers, retention ----------------------------------------------------------------

CHURN = [("journeys", "customer_activity"), ("marts", "churn_points"), ("marts", "churn_by_cohort"), ("marts", "churn_touchpoints")]
AS_OF = dt.datetime(2025, 6, 15)


def churn_stream():
    return stream([
        # p1 buys on 1 Jan, browses on 20 Jan, then nothing: churns 90 days later (20 April), churn point the page view
        ("p1", 0, "completed_order", "store", 10.0),
        ("p1", 19, "viewed_page", "organic_search"),
        ("p1", 30, "received_email", "email"),  # passive: not activity
        # p2 buys on 1 May: quiet for 45 days at the data's end -> censored
        ("p2", 120, "completed_order", "internal", 30.0),
        # p3 buys, unsubscribes 9 days later (churn by signal), comes back on 1 April, still active at the end
        ("p3", 0, "completed_order", "internal", 10.0),
        ("p3", 2, "opened_email", "email"),
        ("p3", 9, "unsubscribed_email", "email"),
        ("p3", 90, "completed_order", "internal", 20.0),
        ("p3", 95, "returned_order", "store", -5.0),
        ("p3", 140, "viewed_page", "direct"),  # 21 May
        # p4 bought in a store on 1 Jan only: churned with the default window, censored with a 180-day store window
        ("p4", 0, "completed_order", "store", 40.0),
        # p5 never buys
        ("p5", 3, "viewed_page", "direct"),
    ])


def test_a_person_who_churns_and_one_who_is_censored(tmp_path):
    q = build(tmp_path, churn_stream(), CHURN, marts={"as_of": AS_OF})
    rows = {(r["person_id"], r["outcome"]): r for r in q("select * from marts.churn_points").to_dicts()}
    assert sorted(rows) == [("p1", "churned"), ("p2", "censored"), ("p3", "censored"), ("p3", "churned_returned"), ("p4", "churned")]
    p1 = rows[("p1", "churned")]
    assert (p1["churn_reason"], p1["churned_at"], p1["last_activity"], p1["previous_activity"]) == (
        "inactivity", dt.datetime(2025, 4, 20), "viewed_page", "completed_order")
    p3 = rows[("p3", "churned_returned")]
    assert (p3["churn_reason"], p3["churned_at"], p3["returned_at"], p3["last_activity"]) == (
        "unsubscribed_email", dt.datetime(2025, 1, 10), dt.datetime(2025, 4, 1), "opened_email")
    assert rows[("p2", "censored")]["churned_at"] is None
    cohort = q("select * from marts.churn_by_cohort order by level, cohort_month").to_dicts()
    # all: 4 customers, 2 churned (p1, p4), 2 censored; January cohort: p1, p3, p4
    assert [(r["level"], r["customers"], r["churned"], r["churned_ever"], r["censored"]) for r in cohort] == [
        ("all", 4, 2, 3, 2), ("cohort", 3, 2, 3, 1), ("cohort", 1, 0, 0, 1)]
    assert cohort[0]["churn_rate"] == 0.5
    lift = {(r["activity"], r["channel"]): r for r in q("select * from marts.churn_touchpoints").to_dicts()}
    # churn points: p1's page view, p3's email open, p4's store order; 9 own events after first purchases
    assert lift[("opened_email", "email")]["churn_points"] == 1 and lift[("opened_email", "email")]["events"] == 1
    assert lift[("opened_email", "email")]["churn_lift"] == pytest.approx((1 / 3) / (1 / 9))


def test_customer_activity_neighbours_step_over_churn_signals_and_keep_a_missing_channel(tmp_path):
    q = build(tmp_path, stream([
        ("p1", 0, "viewed_page", "direct"),
        ("p1", 1, "viewed_page", None),             # no channel: the next own event's previous_channel is null
        ("p1", 2, "received_email", "email"),       # passive: not in customer_activity at all
        ("p1", 3, "unsubscribed_email", "email"),   # a churn signal: kept, but no neighbours of its own
        ("p1", 5, "completed_order", "internal", 10.0),
        ("p1", 9, "viewed_page", "direct"),
    ]), [("journeys", "customer_activity")])
    rows = q("select activity, is_churn_signal, next_at, previous_activity, previous_channel, first_purchase_at "
             "from journeys.customer_activity order by sequence_number").rows()
    day = lambda n: T0 + dt.timedelta(days=n)  # noqa: E731
    assert rows == [
        ("viewed_page", False, day(1), None, None, day(5)),
        ("viewed_page", False, day(5), "viewed_page", "direct", day(5)),   # its next is the order, over the signal
        ("unsubscribed_email", True, None, None, None, day(5)),
        ("completed_order", False, day(9), "viewed_page", None, day(5)),   # the page view before the signal
        ("viewed_page", False, None, "completed_order", "internal", day(5)),
    ]


def test_the_stream_readers_built_in_the_streams_ranges_equal_them_built_whole(tmp_path, monkeypatch):
    from journey_analytics.warehouse import build_in_parts

    readers = [name for name, reader in journeys.STREAM_READERS.items() if reader.in_parts]
    assert sorted(readers) == ["journeys.customer_activity", "journeys.journey_paths", "journeys.touches",
                               "stages.event_stages", "stages.stage_spells"]
    tables = [("journeys", "customer_activity"), ("journeys", "touches"), ("journeys", "journey_paths")]

    def everything(q):
        return {name: q(f"select * from {name} order by all") for name in readers}

    (tmp_path / "whole").mkdir()
    (tmp_path / "parts").mkdir()
    whole = everything(build(tmp_path / "whole", churn_stream(), tables, marts={"as_of": AS_OF}))
    built = []
    monkeypatch.setattr(journeys, "build_in_parts", lambda *args: built.append((args[1], build_in_parts(*args))) or built[-1][1])
    # the stream of p1 ... p5 as if built in three ranges, from p1, p3 and p4 (part_bounds on its 12
    # rows: p1 3, p2 1, p3 6, p4 1, p5 1, rows before each 0, 3, 4, 10, 11, in thirds 0, 0, 1, 2, 2)
    in_parts = everything(build(tmp_path / "parts", churn_stream(), tables, stream_ranges=["p1", "p3", "p4"], marts={"as_of": AS_OF}))
    assert sorted(built) == [(name, 3) for name in sorted(readers)]
    # the 12 stream rows but p1's received email (passive)
    assert whole["journeys.customer_activity"].height == 11
    assert whole["journeys.customer_activity"]["person_id"].unique().sort().to_list() == ["p1", "p2", "p3", "p4", "p5"]
    for name in readers:
        assert whole[name].height > 0, name
        assert in_parts[name].equals(whole[name]), name


def test_a_churn_signal_limited_to_touchpoints_matches_only_those(tmp_path):
    # default signals: entered_lifecycle_stage only into closed, churned, former_customer or lost
    # (a passive activity otherwise); unsubscribed_email whatever its touchpoint
    frame = stream([
        ("p1", 0, "viewed_page", "direct"),
        ("p1", 1, "entered_lifecycle_stage", "crm"),
        ("p1", 2, "entered_lifecycle_stage", "crm"),
        ("p1", 3, "entered_lifecycle_stage", "crm"),
        ("p1", 4, "unsubscribed_email", "email"),
    ]).with_columns(pl.Series("touchpoint", [None, "closed", "customer", None, "newsletter"]))
    q = build(tmp_path, frame, [("journeys", "customer_activity")])
    rows = q("select sequence_number, activity, touchpoint, is_churn_signal from journeys.customer_activity order by sequence_number").rows()
    assert rows == [(1, "viewed_page", None, False), (2, "entered_lifecycle_stage", "closed", True),
                    (5, "unsubscribed_email", "newsletter", True)]


def test_a_per_channel_churn_window_turns_a_churn_into_censoring(tmp_path):
    q = build(tmp_path, churn_stream(), CHURN, marts={"as_of": AS_OF, "churn_days_by_channel": {"store": 180}})
    outcomes = dict(q("select person_id, outcome from marts.churn_points where outcome in ('churned', 'censored')").rows())
    assert outcomes["p4"] == "censored" and outcomes["p1"] == "churned"


SUMMARY = [("journeys", "customer_activity"), ("marts", "churn_points"), ("marts", "customer_summary"), ("marts", "retention_cohorts")]


def test_customer_summary_rfm_and_lifecycle(tmp_path):
    frame = pl.concat([churn_stream(), stream([
        ("p6", 160, "viewed_page", "direct"),                                        # first seen in June: after May
        ("p7", 130, "viewed_page", "direct"), ("p7", 162, "opened_email", "email"),  # first seen in May: new
        ("p8", 40, "viewed_page", "direct"), ("p8", 131, "viewed_page", "direct"),   # February and May: resurrecting
        ("p9", 100, "viewed_page", "direct"),                                        # April only: dormant in May
        ("p9", 102, "viewed_page", "direct", None, None, "p9:2"),                    # ... in a second journey
    ])])
    q = build(tmp_path, frame, SUMMARY, marts={"as_of": AS_OF})
    people = {r["person_id"]: r for r in q("select * from marts.customer_summary").to_dicts()}
    assert [(people[p]["events"], people[p]["journeys"]) for p in ("p8", "p9")] == [(2, 1), (2, 2)]
    p3 = people["p3"]
    assert (p3["orders"], p3["revenue"], p3["frequency"], p3["monetary"]) == (2, 25.0, 2, 25.0)
    assert p3["recency_days"] == pytest.approx(75.0)  # last order 1 April, data ends 15 June
    assert (p3["first_touch_channel"], p3["last_touch_channel"], p3["churn_status"]) == ("internal", "direct", "censored")
    assert people["p1"]["churn_status"] == "churned" and people["p1"]["churned_at"] == dt.datetime(2025, 4, 20)
    assert people["p5"]["churn_status"] == "not_customer" and people["p5"]["r_score"] is None
    # recency quintiles among the four customers (ties by person): p1 and p4 bought 1 Jan, p3 1 April, p2 1 May
    assert [people[p]["r_score"] for p in ("p1", "p4", "p3", "p2")] == [1, 2, 3, 4]
    # the last complete month before 15 June is May (April before it)
    status = {p: people[p]["lifecycle_status"] for p in people}
    assert status == {"p1": "inactive", "p2": "new", "p3": "returning", "p4": "inactive", "p5": "inactive",
                      "p6": None, "p7": "new", "p8": "resurrecting", "p9": "dormant"}
    assert people["p1"]["lifecycle_period"] == dt.date(2025, 5, 1)
    cohorts = q("select cohort, period_number, cohort_customers, active_customers, purchasing_customers from marts.retention_cohorts "
                "order by cohort, period_number")
    jan = cohorts.filter(pl.col("cohort") == dt.date(2025, 1, 1))
    # January cohort p1, p3, p4: in January all three buy; in April p3 buys again; in May p3 browses; June is quiet
    assert jan.rows() == [(dt.date(2025, 1, 1), 0, 3, 3, 3), (dt.date(2025, 1, 1), 1, 3, 0, 0), (dt.date(2025, 1, 1), 2, 3, 0, 0),
                          (dt.date(2025, 1, 1), 3, 3, 1, 1), (dt.date(2025, 1, 1), 4, 3, 1, 0), (dt.date(2025, 1, 1), 5, 3, 0, 0)]


# --- stages per unit --------------------------------------------------------------------------

def test_stage_spells_current_stage_and_regressions(tmp_path):
    rows = [("a", 0, "viewed_page", "paid_search"), ("a", 1, "viewed_product", "internal"), ("a", 1.5, "viewed_product", "internal"),
            ("a", 2, "added_to_cart", "internal"), ("a", 3, "viewed_product", "internal")]
    q = build(tmp_path, stream(rows), [], marts={"as_of": T0 + dt.timedelta(days=5)})
    spells = q("select stage, entered_at, last_event_at, stage_events, hours_in_stage, is_regression, is_current "
               "from stages.stage_spells where unit_type = 'person' order by spell_number")
    progress = q("select * from stages.unit_progress where unit_type = 'person'").row(0, named=True)
    assert spells["stage"].to_list() == ["awareness", "consideration", "decision", "consideration"]
    assert spells["hours_in_stage"].to_list() == pytest.approx([24.0, 24.0, 24.0, 48.0])  # the last runs to the data's end
    assert spells["is_regression"].to_list() == [False, False, False, True]
    # the consideration spell holds the two product views (days 1 and 1.5); the others one event each
    assert spells["stage_events"].to_list() == [1, 2, 1, 1]
    assert spells["last_event_at"].to_list() == [T0 + dt.timedelta(days=d) for d in (0, 1.5, 2, 3)]
    assert (progress["furthest_stage"], progress["current_stage"], progress["regressions"], progress["stage_changes"]) == (
        "decision", "consideration", 1, 3)
    assert progress["funnel_stage"] is None  # the funnel counts journeys by default, this row is the person's


@pytest.mark.parametrize("unit", ["journey", "person"])
def test_funnel_units_first_touch_and_the_channel_before_the_first_purchase(tmp_path, unit):
    # a's first journey: a paid-search page, an email click, an order; its second: an organic page
    # and an order. b: one journey, a page and no order.
    rows = [("a", 0, "viewed_page", "paid_search", None, None, "a:1"), ("a", 1, "clicked_email", "email", None, None, "a:1"),
            ("a", 2, "completed_order", "internal", 30.0, None, "a:1"),
            ("a", 10, "viewed_page", "organic", None, None, "a:2"), ("a", 11, "completed_order", "internal", 20.0, None, "a:2"),
            ("b", 5, "viewed_page", "social", None, None, "b:1")]
    q = build(tmp_path, stream(rows), [], stages={"unit": unit})
    units = q("select unit_id, person_id, sequence_number, started_at, cohort_week, cohort_month, first_touch_channel, "
              "last_channel_before_purchase from stages.funnel_units order by unit_id").rows()
    if unit == "journey":
        assert units == [
            ("a:1", "a", 1, T0, dt.date(2024, 12, 30), dt.date(2025, 1, 1), "paid_search", "email"),
            ("a:2", "a", 4, T0 + dt.timedelta(days=10), dt.date(2025, 1, 6), dt.date(2025, 1, 1), "organic", "organic"),
            ("b:1", "b", 1, T0 + dt.timedelta(days=5), dt.date(2025, 1, 6), dt.date(2025, 1, 1), "social", None),
        ]
    else:  # a person's first purchase is a:1's order, after the email click
        assert units == [
            ("a", "a", 1, T0, dt.date(2024, 12, 30), dt.date(2025, 1, 1), "paid_search", "email"),
            ("b", "b", 1, T0 + dt.timedelta(days=5), dt.date(2025, 1, 6), dt.date(2025, 1, 1), "social", None),
        ]


def test_drop_off_drivers_odds_ratio_on_hand_worked_journeys(tmp_path):
    def journey(person, ticket, buys):
        rows = [(person, 0, "viewed_page", "paid_search"), (person, 0.1, "viewed_product", "internal"),
                (person, 0.2, "added_to_cart", "internal")]
        rows += [(person, 0.3, "opened_support_ticket", "call_centre")] if ticket else []
        rows += [(person, 0.4, "completed_order", "internal", 10.0)] if buys else []
        return rows

    # at decision: three drop off (two opened a ticket), two buy (one opened a ticket); the data ends on day 60
    rows = journey("d1", True, False) + journey("d2", True, False) + journey("d3", False, False) + journey("a1", False, True) + \
        journey("a2", True, True)
    q = build(tmp_path, stream(rows), [("journeys", "customer_activity"), ("marts", "funnel_drop_off"), ("marts", "drop_off_drivers")],
              marts={"as_of": T0 + dt.timedelta(days=60), "driver_min_support": 1})
    # the buyers stop at purchase (no repeat order), the others at decision
    dropped = q("select unit_id, stopped_stage, last_activity, still_in_window from marts.funnel_drop_off "
                "where stopped_stage = 'decision' order by unit_id").rows()
    assert dropped == [("d1:1", "decision", "opened_support_ticket", False), ("d2:1", "decision", "opened_support_ticket", False),
                       ("d3:1", "decision", "added_to_cart", False)]
    ticket = q("select * from marts.drop_off_drivers where stage = 'decision' and activity = 'opened_support_ticket'").row(0, named=True)
    # a = 2 dropped with, b = 1 dropped without, c = 1 advanced with, d = 1 advanced without: OR = (2 x 1) / (1 x 1)
    assert (ticket["dropped_units"], ticket["advanced_units"], ticket["dropped_with_activity"], ticket["advanced_with_activity"]) == (3, 2, 2, 1)
    assert ticket["odds_ratio"] == pytest.approx(2.0)
    spread = 1.96 * (1 / 2 + 1 + 1 + 1) ** 0.5
    assert (ticket["odds_ratio_low"], ticket["odds_ratio_high"]) == pytest.approx((2 * np.exp(-spread), 2 * np.exp(spread)))
    # every unit at decision added to cart: a zero cell, so 0.5 is added to each: (3.5 x 0.5) / (0.5 x 2.5)
    cart = q("select odds_ratio from marts.drop_off_drivers where stage = 'decision' and activity = 'added_to_cart'").item()
    assert cart == pytest.approx(3.5 * 0.5 / (0.5 * 2.5))

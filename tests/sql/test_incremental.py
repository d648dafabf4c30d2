"""Incremental runs: a warehouse fed one delivery date at a time (identity re-stitched only where
new links reach, event persons and streams rebuilt only where they changed) ends with the same
tables as one whole rebuild of the same deliveries -- also when a delivery is taken away again."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from journey_analytics import identity, journeys, marts, stages, staging
from journey_analytics.generator import GeneratorConfig, generate
from journey_analytics.ingest.landing import SOURCES, delivery_dates
from journey_analytics.warehouse import connect, fetch, table_fingerprint

from tests.conftest import settings_for
from tests.sql.test_formats import CONTACT_HEADER
from tests.sql.test_identity import segment

SCHEMAS = ("identity", "journeys", "stages", "marts")
#: differs by design: a warehouse built day by day remembers the person ids that merges retired
HISTORY = "identity.person_id_history"
#: work tables of the last resolution (an incremental run's cover its region only)
SCRATCH = {f"identity.{t}" for t in ("cc_nodes", "cc_edges", "cc_components", "usable_links", "shared", "over_limit", "over_limit_types")}


def build(landing: Path, warehouse: Path, dates: list[dt.date], **overrides) -> dict:
    """Ingest `dates` (every source), then build everything downstream; returns the identity and
    journeys figures (mode and scope of each incremental model)."""
    settings = settings_for(landing, warehouse, **overrides)
    with connect(settings) as con:
        for source in SOURCES:
            staging.ingest(con, source, dates, settings)
        built = staging.build_staging(con, settings)
        figures = {f"staging.{m}": built[m] for m in ("events", "duplicate_rows", "contact_versions", "contacts")}
        figures["identity"] = identity.resolve(con, settings)
        for model in journeys.MODELS:
            figures[model] = journeys.build_journey_model(con, model, settings)
        built = marts.build_marts(con, settings)
        figures.update({model: built[model] for model in journeys.STREAM_READERS})
    return figures


def fingerprints(warehouse: Path, landing: Path) -> dict[str, str]:
    with connect(settings_for(landing, warehouse), read_only=True) as con:
        tables = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in ('identity', 'journeys', 'stages', 'marts') "
            "or table_schema || '.' || table_name in ('staging.events', 'staging.duplicate_rows', 'staging.contact_versions', 'staging.contacts')"
        ).fetchall()]
        return {t: table_fingerprint(con, t) for t in sorted(tables) if t != HISTORY}


def copy_day(source_root: Path, target_root: Path, day: dt.date) -> None:
    for folder in source_root.glob(f"*/{day.isoformat()}"):
        shutil.copytree(folder, target_root / folder.parent.name / folder.name)


def assert_equal_to_a_whole_rebuild(landing: Path, warehouse: Path, whole: Path, dates: list[dt.date], **overrides) -> None:
    """One whole build of `dates` (into `whole`) ends with the same tables as `warehouse`, built day by day."""
    build(landing, whole, dates, **overrides)
    got, expected = fingerprints(warehouse, landing), fingerprints(whole, landing)
    assert [t for t in expected if got.get(t) != expected[t] and t not in SCRATCH] == []


def two_web_deliveries(landing, tmp_path: Path, first: list[str], second: list[str], **overrides) -> tuple[Path, dict]:
    """Web lines delivered on 2025-03-01 and built, then lines delivered on 2025-03-02 and built
    again (incrementally): the warehouse and the second build's figures."""
    warehouse = tmp_path / "w.duckdb"
    for day, lines in ((dt.date(2025, 3, 1), first), (dt.date(2025, 3, 2), second)):
        landing.put("web", day.isoformat(), "s.jsonl", "\n".join(lines) + "\n")
        figures = build(landing.root, warehouse, [day], **overrides)
    return warehouse, figures


def query(landing: Path, warehouse: Path, sql: str) -> list[tuple]:
    """The rows of one query on the warehouse, opened read only."""
    with connect(settings_for(landing, warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def scope(figures: dict, model: str) -> list:
    """What a stream reader's build did: its mode, the persons and the rows it built again."""
    return [figures[model][k] for k in ("mode", "persons_built_again", "rows_built_again")]


@pytest.mark.parametrize("overrides", [{}, {"stages": {"window_days": 2}}], ids=["defaults", "two_day_funnel_window"])
def test_daily_runs_end_equal_to_a_whole_rebuild(tmp_path, overrides):
    # with a two-day funnel window, funnel_levels keeps the chains of changed persons started
    # before their first new event less the window (steps/funnel_scope.sql)
    generate(GeneratorConfig(customers=150, days=14, seed=5, start=dt.date(2025, 3, 1)), tmp_path / "gen")
    everything = tmp_path / "gen" / "landing"
    dates = delivery_dates(everything)
    daily = tmp_path / "daily"
    warehouse = tmp_path / "daily.duckdb"
    for day in dates[:9]:
        copy_day(everything, daily, day)
    first = build(daily, warehouse, dates[:9], **overrides)
    assert first["identity"]["mode"] == "whole" and first["customer_stream"]["mode"] == "whole"
    assert {first[model]["mode"] for model in journeys.STREAM_READERS} == {"whole"}
    runs = []
    for day in dates[9:]:
        copy_day(everything, daily, day)
        runs.append(build(daily, warehouse, [day], **overrides))
    # every later run was incremental, and did less than the whole
    whole = build(everything, tmp_path / "whole.duckdb", dates, **overrides)
    for figures in runs:
        assert figures["identity"]["mode"] == figures["event_persons"]["mode"] == figures["customer_stream"]["mode"] == "incremental"
        assert figures["identity"]["identifiers_resolved_again"] < whole["identity"]["identifiers"]
        assert figures["customer_stream"]["persons_built_again"] < whole["customer_stream"]["persons_built_again"]
        assert figures["customer_stream"]["events_built_again"] < whole["customer_stream"]["events_built_again"]
        # and compared with its last build only the events logged as changed
        for model in ("identity", "event_persons", "customer_stream"):
            assert 0 < figures[model]["events_compared"] < whole["customer_stream"]["events_built_again"]
        # the models reading the stream's changes built again only the rows it changed
        for model in journeys.STREAM_READERS:
            assert figures[model]["mode"] == "incremental"
            assert figures[model]["persons_built_again"] == figures["customer_stream"]["persons_built_again"]
            assert figures[model]["rows_built_again"] < whole[model]["rows_built_again"]
    assert any(f["identity"]["identifiers_resolved_again"] > 0 for f in runs)
    # streams were both continued from their last rows and built again whole
    assert any(f["customer_stream"]["persons_continued"] > 0 for f in runs)
    assert any(f["customer_stream"]["persons_built_again"] > f["customer_stream"]["persons_continued"] for f in runs)
    with connect(settings_for(everything, tmp_path / "whole.duckdb"), read_only=True) as con:
        # the data exercises the guards, so the region logic is tested on refusals too
        rules = {r for (r,) in con.execute("select distinct refused_rule from identity.link_decisions where refused_rule is not null").fetchall()}
        assert "shared_identifier" in rules
    got, expected = fingerprints(warehouse, daily), fingerprints(tmp_path / "whole.duckdb", everything)
    assert set(got) == set(expected)
    assert [t for t in expected if got[t] != expected[t] and t not in SCRATCH] == []


def test_a_delivery_taken_away_is_undone_incrementally(tmp_path):
    generate(GeneratorConfig(customers=60, days=8, seed=3, start=dt.date(2025, 3, 1)), tmp_path / "gen")
    landing = tmp_path / "gen" / "landing"
    dates = delivery_dates(landing)
    warehouse = tmp_path / "daily.duckdb"
    build(landing, warehouse, dates)
    # a day's web and CRM deliveries are withdrawn: links, sightings and events disappear
    middle = dates[len(dates) // 2]
    for source in ("web", "crm"):
        shutil.rmtree(landing / source / middle.isoformat())
    after = build(landing, warehouse, [middle])
    assert after["identity"]["mode"] == "incremental" and after["identity"]["identifiers_resolved_again"] > 0
    assert_equal_to_a_whole_rebuild(landing, warehouse, tmp_path / "whole.duckdb", delivery_dates(landing))
    with connect(settings_for(landing, warehouse), read_only=True) as con:
        assert fetch(con, "select count(*) as n from staging.events where _delivery_date = $d and source in ('web', 'crm')",
                     {"d": middle})["n"][0] == 0


def test_the_worked_example_re_decides_only_the_two_persons_a_new_login_joins(landing, tmp_path):
    # docs/performance.md, "Incremental runs": d7 + u3 are person A, d9 + C5 person B, d4 + u8 someone else
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d7", "u3"),
        segment("m2", "d9", url="https://shop.example.com/?cid=C5&utm_medium=email"),
        segment("m3", "d4", "u8"),
    ]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    first = build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    assert first["identity"]["persons"] == 3
    # next day d9 logs in as u3
    landing.put("web", "2025-03-02", "s.jsonl", segment("m4", "d9", "u3", ts="2025-03-02T10:00:00Z") + "\n")
    second = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert second["identity"]["mode"] == "incremental"
    assert second["identity"]["identifiers_resolved_again"] == 4  # d7, u3, d9, C5 -- not d4, u8
    assert second["identity"]["persons"] == 2
    assert second["identity"]["persons_built_again"] == 1  # the merged person; A's row goes, d4 + u8's is kept
    assert second["customer_stream"]["persons_built_again"] == 2  # A, and B (whose id, anchored on C5, the merged person keeps)
    assert second["customer_stream"]["events_built_again"] == 3  # the merged person's m1, m2 and m4; not m3 (d4 + u8)
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        merged = "p_" + hashlib.md5(b"contact_id:C5").hexdigest()[:16]
        person_a = "p_" + hashlib.md5(b"user_id:u3").hexdigest()[:16]
        people = dict(con.execute("select identifier, person_id from identity.identity_map").fetchall())
        assert {people[i] for i in ("anonymous_id:d7", "user_id:u3", "anonymous_id:d9", "contact_id:C5")} == {merged}
        assert people["user_id:u8"] == people["anonymous_id:d4"] == "p_" + hashlib.md5(b"user_id:u8").hexdigest()[:16]
        assert con.execute("select previous_person_id, person_id from identity.person_id_history").fetchall() == [(person_a, merged)]
        assert con.execute("select person_id, identifiers, contact_ids, user_ids, anonymous_ids from identity.persons order by all").fetchall() == \
            sorted([(merged, 4, 1, 1, 2), (people["user_id:u8"], 2, 0, 1, 1)])
        assert con.execute("select count(*), count(distinct person_id) from journeys.customer_stream").fetchall() == [(4, 2)]


def _order(message_id: str, anonymous_id: str, ts: str) -> str:
    return json.dumps({"type": "track", "event": "Order Completed", "messageId": message_id, "timestamp": ts,
                       "anonymousId": anonymous_id, "properties": {"order_id": message_id, "revenue": 10.0, "currency": "GBP"}})


def test_a_stream_continues_from_its_last_rows_when_only_new_events_arrive(landing, tmp_path):
    # docs/performance.md, "Incremental runs": persons touched only by new events keep their rows
    # before the first new one; the rest is built again, continuing sessions, journeys and counts.
    # Device a1: one visit of page views every 25 minutes from 00:00 to 11:40 (sessions are cut
    # into 12-hour parts from the visit's start). Device b1: a page view, an order, and a page view
    # after the order. Sessions end after 30 minutes without an event.
    day1 = [segment(f"a{i:02d}", "a1", ts=f"2025-03-01T{(25 * i) // 60:02d}:{(25 * i) % 60:02d}:00Z") for i in range(29)]
    day1 += [segment("b1", "b1", ts="2025-03-01T10:00:00Z"), _order("b2", "b1", "2025-03-01T10:10:00Z"),
             segment("b3", "b1", ts="2025-03-01T14:00:00Z")]
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join(day1) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    # next day: a1 at 11:55 (same visit, same 12-hour part) and 12:05 (same visit, the next part);
    # b1 late at 13:50 (between the order and 14:00, which now joins its visit) and at 14:10;
    # c1, a device never seen before
    landing.put("web", "2025-03-02", "s.jsonl", "\n".join([
        segment("a29", "a1", ts="2025-03-01T11:55:00Z"), segment("a30", "a1", ts="2025-03-01T12:05:00Z"),
        segment("b4", "b1", ts="2025-03-01T13:50:00Z"), segment("b5", "b1", ts="2025-03-01T14:10:00Z"),
        segment("c1", "c1", ts="2025-03-01T09:00:00Z"),
    ]) + "\n")
    second = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    stream_figures = second["customer_stream"]
    assert stream_figures["mode"] == "incremental"
    assert stream_figures["persons_built_again"] == stream_figures["persons_continued"] == 3
    assert stream_figures["events_built_again"] == 6  # a29, a30; b4, b3 (after b4), b5; c1
    # event_stages classifies the suffixes' rows again, no others: of those six page views only c1
    # (its device's first) is a stage event (awareness); a00, b1 (first views) and b2 (the order) keep
    # their rows
    assert scope(second, "stages.event_stages") == ["incremental", 3, 1]
    # customer_activity writes again from each person's last own event before the suffix (its next_at
    # changes): a1 from a28 (3 rows: a28, a29, a30), b1 from the order b2 (b2, b4, b3, b5), c1 whole
    assert scope(second, "journeys.customer_activity") == ["incremental", 3, 8]
    # touches builds again by journey, from the journey holding the first new row: a1's one journey
    # (31 page views, each a direct touch), b1's second journey only (b4 starts it after the order:
    # b4, b3, b5), and c1's view
    assert scope(second, "journeys.touches") == ["incremental", 3, 35]
    # so does funnel_units (one row per journey): a1's journey, b1's second, c1's
    assert scope(second, "stages.funnel_units") == ["incremental", 3, 3]
    # and journey_paths, two rows (collapsed or not) per path: the three journeys' channel paths,
    # and the stage paths of a1's and c1's (b1's second journey holds repeat views only: no stage)
    assert scope(second, "journeys.journey_paths") == ["incremental", 3, 10]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)])
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        rows = {key.split(":")[-1]: row for key, *row in con.execute(
            "select event_key, sequence_number, session_key, journey_number, is_journey_start, activity_occurrence, "
            "activity_repeated_at, next_channel from journeys.customer_stream").fetchall()}
    session = {m: rows[m][1].split(":")[-1] for m in rows}
    assert session["a28"] == session["a29"] == "a00" and session["a30"] == "a30"
    assert [rows[m][0] for m in ("a29", "a30")] == [30, 31]
    assert [rows[m][0] for m in ("b1", "b2", "b4", "b3", "b5")] == [1, 2, 3, 4, 5]
    assert session["b4"] == session["b3"] == session["b5"] == "b4" and session["b1"] == session["b2"] == "b1"
    assert [(rows[m][2], rows[m][3]) for m in ("b1", "b2", "b4", "b3", "b5")] == [(1, True), (1, False), (2, True), (2, False), (2, False)]
    # the page view before the order is next repeated by the late b4, no longer by b3
    assert rows["b1"][5] == dt.datetime(2025, 3, 1, 13, 50) and [rows[m][4] for m in ("b1", "b4", "b3", "b5")] == [1, 2, 3, 4]
    assert rows["c1"][:4] == [1, "session:web:c1", 1, True]  # a new person's suffix is its whole stream
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        staged = con.execute("select event_key, stage from stages.event_stages order by event_key").fetchall()
        activity = {key.split(":")[-1]: row for key, *row in con.execute(
            "select event_key, next_at, previous_activity, first_purchase_at from journeys.customer_activity").fetchall()}
    assert staged == [("web:a00", "awareness"), ("web:b1", "awareness"), ("web:b2", "purchase"), ("web:c1", "awareness")]
    assert activity["a28"][0] == dt.datetime(2025, 3, 1, 11, 55) and activity["a30"][0] is None
    # the order is now followed by the late b4, and b4 follows the order
    assert activity["b2"][0] == dt.datetime(2025, 3, 1, 13, 50) and activity["b4"][1] == "completed_order"
    assert {activity[m][2] for m in ("b1", "b2", "b4", "b3", "b5")} == {dt.datetime(2025, 3, 1, 10, 10)}
    touches = query(landing.root, warehouse, "select journey_id, event_key, sequence_number, touch_number, touch_count, converted "
                                             "from journeys.touches where event_key like 'web:b%' order by sequence_number")
    journey = {key: journey_id.split(":")[-1] for journey_id, key, *_ in touches}
    assert [(key, journey[key], *rest) for _, key, *rest in touches] == [
        ("web:b1", "1", 1, 1, 2, True), ("web:b2", "1", 2, 2, 2, True),
        ("web:b4", "2", 3, 1, 3, False), ("web:b3", "2", 4, 2, 3, False), ("web:b5", "2", 5, 3, 3, False)]
    units = query(landing.root, warehouse, "select sequence_number, started_at, first_touch_channel, last_channel_before_purchase "
                                           "from stages.funnel_units where person_id = (select person_id from journeys.customer_stream "
                                           "where event_key = 'web:b1') order by sequence_number")
    assert units == [(1, dt.datetime(2025, 3, 1, 10, 0), "direct", "direct"), (3, dt.datetime(2025, 3, 1, 13, 50), "direct", None)]
    paths = query(landing.root, warehouse, "select sequence_number, path_type, steps, path, converted, days * 1440 from journeys.journey_paths "
                                           "where person_id = (select person_id from journeys.customer_stream where event_key = 'web:b1') "
                                           "and not collapsed order by sequence_number, path_type")
    # b1's first journey (kept): a view and the order; its second (built again): three views over 20 minutes
    assert paths == [(1, "channel", 2, "direct > direct", True, 10.0), (1, "stage", 2, "awareness > purchase", True, 10.0),
                     (3, "channel", 3, "direct > direct > direct", False, 20.0)]


def test_with_the_person_as_funnel_unit_a_continued_person_has_its_unit_built_again_whole(landing, tmp_path):
    # stages.unit = 'person': a person's one unit row reads all its events (its first, and the
    # channel before its first purchase), so funnel_units builds changed persons again whole, not
    # from the journey their new events join. d1 views p1, orders (its first journey ends) and views
    # p2 on day 1, and views p3 on day 2; e1's view is not touched
    person_unit = {"stages": {"unit": "person"}}
    warehouse, second = two_web_deliveries(landing, tmp_path, [
        segment("p1", "d1"), _order("o0", "d1", "2025-03-01T10:30:00Z"), segment("p2", "d1", ts="2025-03-01T11:00:00Z"),
        segment("e1", "e1")], [segment("p3", "d1", ts="2025-03-01T12:00:00Z")], **person_unit)
    assert second["customer_stream"]["persons_continued"] == 1
    assert scope(second, "stages.funnel_units") == ["incremental", 1, 1]
    units = query(landing.root, warehouse, "select unit_id = person_id, sequence_number, started_at, last_channel_before_purchase "
                                           "from stages.funnel_units order by last_channel_before_purchase nulls first")
    ten = dt.datetime(2025, 3, 1, 10, 0)
    assert units == [(True, 1, ten, None), (True, 1, ten, "direct")]  # e1's; d1's, whose order follows a direct view
    # stage_spells builds d1's journey spells again from its second journey (p2, p3: repeat views, no
    # stage event: none), and its person spells from the last one starting before p3: the purchase
    # spell (o0); the awareness spells of the person and of the first journey (p1) and the first
    # journey's purchase spell are kept. e1's spells are kept, but its person's current spell runs
    # to the data's end, which moved from 11:00 (p2) to 12:00 (p3): 2 hours from 10:00, its journey's 0
    assert scope(second, "stages.stage_spells") == ["incremental", 1, 1]
    spells = query(landing.root, warehouse, "select unit_type, stage, hours_in_stage from stages.stage_spells where person_id = "
                                            "(select person_id from journeys.customer_stream where event_key = 'web:e1') order by unit_type")
    assert spells == [("journey", "awareness", 0.0), ("person", "awareness", 2.0)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)], **person_unit)


def test_a_persons_spells_continue_from_the_last_one_before_the_new_events(landing, tmp_path):
    # stages.stage_spells in a daily run (stages/steps/spell_scope.sql). Day 1, device d1: a first page
    # view v1 (awareness) at 10:00, an order o1 (purchase) at 10:10, which ends the first journey;
    # then c1, a product added (decision) at 11:00, and p1, a product viewed (consideration) at
    # 11:05. Person spells: 1 awareness, 2 purchase, 3 decision (after purchase: a regression),
    # 4 consideration (a regression). Day 2: x, a product added at 11:02 (late: between c1 and p1),
    # and p2, a product viewed at 11:20.
    warehouse, second = two_web_deliveries(landing, tmp_path, [
        segment("v1", "d1"), _order("o1", "d1", "2025-03-01T10:10:00Z"), _track("c1", "d1", "Product Added", "2025-03-01T11:00:00Z"),
        _track("p1", "d1", "Product Viewed", "2025-03-01T11:05:00Z")],
        [_track("x", "d1", "Product Added", "2025-03-01T11:02:00Z"), _track("p2", "d1", "Product Viewed", "2025-03-01T11:20:00Z")])
    # the first changed row is x's (the 4th); the last person spell starting before it is spell 3
    # (c1): spells 3 and 4 are built again, 1 and 2 kept. The journey holding x is the second (from
    # c1): its two spells are built again, the first journey's two kept. 2 + 2 rows
    assert scope(second, "stages.stage_spells") == ["incremental", 1, 4]
    spells = query(landing.root, warehouse, "select unit_type, spell_number, stage, stage_events, is_regression, left_at, hours_in_stage "
                                            "from stages.stage_spells order by unit_type, unit_id, spell_number")
    at = lambda hhmm: dt.datetime(2025, 3, 1, int(hhmm[:2]), int(hhmm[3:]))  # noqa: E731
    assert spells == [
        # journey 1 (kept): awareness until the order; the order's spell ends with the journey
        ("journey", 1, "awareness", 1, False, at("10:10"), 10 / 60), ("journey", 2, "purchase", 1, False, None, 0.0),
        # journey 2: c1 and x (decision), p1 and p2 (consideration, after decision: a regression),
        # which runs to the journey's end (p2, 11:20)
        ("journey", 1, "decision", 2, False, at("11:05"), 5 / 60), ("journey", 2, "consideration", 2, True, None, 15 / 60),
        # the person: spell 3 keeps its number and is still a regression after the kept purchase
        # spell; the current spell runs to the data's end (p2)
        ("person", 1, "awareness", 1, False, at("10:10"), 10 / 60), ("person", 2, "purchase", 1, False, at("11:00"), 50 / 60),
        ("person", 3, "decision", 2, True, at("11:05"), 5 / 60), ("person", 4, "consideration", 2, True, None, 15 / 60)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)])


def test_each_stage_model_continues_its_spells_from_its_own_cut(landing, tmp_path):
    # the same deliveries with a second active model, awareness_consideration_decision, where the order
    # is a decision too: its person spells are awareness (v1), decision (o1, c1: one spell) and
    # consideration (p1). The last of its spells starting before x (the 4th row) is the decision
    # spell from o1 (the 2nd): it is built again from there (decision: o1, c1, x; consideration: p1,
    # p2), while the default model's is cut at c1, as above. Rows written: the default model's 4;
    # this model's 2 person spells and the second journey's 2 (decision: c1, x; consideration)
    models = {"stages": {"active_models": ["default", "awareness_consideration_decision"]}}
    warehouse, second = two_web_deliveries(landing, tmp_path, [
        segment("v1", "d1"), _order("o1", "d1", "2025-03-01T10:10:00Z"), _track("c1", "d1", "Product Added", "2025-03-01T11:00:00Z"),
        _track("p1", "d1", "Product Viewed", "2025-03-01T11:05:00Z")],
        [_track("x", "d1", "Product Added", "2025-03-01T11:02:00Z"), _track("p2", "d1", "Product Viewed", "2025-03-01T11:20:00Z")],
        **models)
    assert scope(second, "stages.stage_spells") == ["incremental", 1, 8]
    spells = query(landing.root, warehouse, "select spell_number, stage, stage_events from stages.stage_spells "
                                            "where unit_type = 'person' and stage_model = 'awareness_consideration_decision' "
                                            "order by spell_number")
    assert spells == [(1, "awareness", 1), (2, "decision", 3), (3, "consideration", 2)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)],
                                    **models)


def _track(message_id: str, anonymous_id: str, event: str, ts: str) -> str:
    return json.dumps({"type": "track", "event": event, "messageId": message_id, "timestamp": ts, "anonymousId": anonymous_id})


def test_funnel_chains_started_a_window_before_the_new_events_are_kept(landing, tmp_path):
    # stages.funnel_levels (order mode 'ordered', window 3 days here) follows again only the chains
    # of a changed person started at or after its first new event less the window
    # (steps/funnel_scope.sql). d1: a first page view (awareness) on 20 February 10:00 and a
    # product view (consideration) at 10:05; arriving on day 2, an ad landing (awareness: paid
    # search) on 1 March 09:00, a product view and a cart addition (decision). The first new event
    # is the ad view: the cut is 26 February 09:00, so the 20 February chain (levels 1 and 2) is
    # kept and the new chain's three levels are written. e1: a first view on 27 February 10:00 and,
    # arriving on day 2, a product view on 1 March 10:00: the cut (26 February 10:00) comes before
    # the chain's start, so the chain is followed again whole, now to level 2 (two rows).
    window = {"stages": {"window_days": 3}}
    warehouse, second = two_web_deliveries(landing, tmp_path, [
        segment("v1", "d1", ts="2025-02-20T10:00:00Z"), _track("p1", "d1", "Product Viewed", "2025-02-20T10:05:00Z"),
        segment("w1", "e1", ts="2025-02-27T10:00:00Z")], [
        segment("a2", "d1", ts="2025-03-01T09:00:00Z", url="https://shop.example.com/?utm_medium=cpc&utm_source=google"),
        _track("p2", "d1", "Product Viewed", "2025-03-01T09:02:00Z"), _track("c2", "d1", "Product Added", "2025-03-01T09:05:00Z"),
        _track("q2", "e1", "Product Viewed", "2025-03-01T10:00:00Z")], **window)
    assert second["customer_stream"]["persons_continued"] == 2
    assert scope(second, "stages.funnel_levels") == ["incremental", 2, 5]
    levels = query(landing.root, warehouse, "select split_part(stream.event_key, ':', 2), levels.level, levels.chain_start "
                                            "from stages.funnel_levels as levels inner join journeys.customer_stream as stream "
                                            "on stream.person_id = levels.person_id and stream.sequence_number = levels.sequence_number")
    d1_old, d1_new, e1 = dt.datetime(2025, 2, 20, 10, 0), dt.datetime(2025, 3, 1, 9, 0), dt.datetime(2025, 2, 27, 10, 0)
    assert sorted(levels) == sorted([("v1", 1, d1_old), ("p1", 2, d1_old), ("w1", 1, e1), ("q2", 2, e1),
                                     ("a2", 1, d1_new), ("p2", 2, d1_new), ("c2", 3, d1_new)])
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)], **window)


def test_a_persons_first_purchase_arriving_later_reaches_the_activity_rows_kept(landing, tmp_path):
    # customer_activity keeps a continued person's rows before its last own event ahead of the new
    # ones, but their first_purchase_at must become the new order's: d1 views p1 (10:00) and p2
    # (11:00) on day 1 and orders at 12:00 on day 2
    warehouse, second = two_web_deliveries(landing, tmp_path, [segment("p1", "d1"), segment("p2", "d1", ts="2025-03-01T11:00:00Z")],
                                           [_order("o1", "d1", "2025-03-01T12:00:00Z")])
    assert second["customer_stream"]["persons_continued"] == 1
    # written again: p2 (its next_at is the order) and o1; p1 kept
    assert scope(second, "journeys.customer_activity") == ["incremental", 1, 2]
    rows = query(landing.root, warehouse, "select event_key, next_at, previous_activity, first_purchase_at from journeys.customer_activity "
                                          "order by sequence_number")
    noon = dt.datetime(2025, 3, 1, 12, 0)
    assert rows == [("web:p1", dt.datetime(2025, 3, 1, 11, 0), None, noon), ("web:p2", noon, "viewed_page", noon),
                    ("web:o1", None, "viewed_page", noon)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)])


def test_the_stream_readers_rebuild_whole_when_the_change_log_went_missing(landing, tmp_path):
    # journeys.stream_changes holds what the readers of the stream have not read yet: without it
    # nothing tells them what changed, so each builds whole (and the result equals a whole rebuild)
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([segment("m1", "d1"), segment("m2", "d2")]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    settings = settings_for(landing.root, warehouse)
    with connect(settings) as con:
        con.execute("drop table journeys.stream_changes")
        # a reader built on its own, with no stream build before it, finds no log either
        assert stages.build_stage_model(con, "event_stages", settings)["mode"] == "whole"
        con.execute("drop table journeys.stream_changes")
    landing.put("web", "2025-03-02", "s.jsonl", segment("m3", "d1", ts="2025-03-02T10:00:00Z") + "\n")
    second = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert second["customer_stream"]["mode"] == "incremental"
    assert {second[model]["mode"] for model in journeys.STREAM_READERS} == {"whole"}
    # the next day, with the log back, they read only what changed: d1's new page view
    landing.put("web", "2025-03-03", "s.jsonl", segment("m4", "d1", ts="2025-03-03T10:00:00Z") + "\n")
    third = build(landing.root, warehouse, [dt.date(2025, 3, 3)])
    assert {(second[m]["mode"], third[m]["mode"], third[m]["persons_built_again"]) for m in journeys.STREAM_READERS} == {
        ("whole", "incremental", 1)}
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, d) for d in (1, 2, 3)])




def test_a_copy_delivered_later_for_an_earlier_date_displaces_the_kept_event(landing, tmp_path):
    # staging.events writes again only the events with a copy in a slice written since its last
    # build, and the derived ones. Day 2's delivery holds page views m1 (10:00) and m2; a delivery
    # for day 1, arriving after it, holds m0 and another copy of m1 (09:00). Of a key's copies the
    # first received is kept -- with no receive time of Segment's own, the earlier delivery date --
    # so m1 becomes day 1's copy; m2 is kept as it was, unwritten
    day1, day2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
    warehouse = tmp_path / "w.duckdb"
    landing.put("web", "2025-03-02", "s.jsonl", "\n".join([segment("m1", "d1", ts="2025-03-02T10:00:00Z"),
                                                          segment("m2", "d2", ts="2025-03-02T11:00:00Z")]) + "\n")
    first = build(landing.root, warehouse, [day2])
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([segment("m0", "d3", ts="2025-03-01T08:00:00Z"),
                                                          segment("m1", "d1", ts="2025-03-01T09:00:00Z")]) + "\n")
    second = build(landing.root, warehouse, [day1])
    assert first["staging.events"] == {"mode": "whole", "rows_written": 2}
    assert second["staging.events"] == {"mode": "incremental", "rows_written": 2, "contacts_worked_out_again": 0}  # m0 and m1
    # staging.events logged m0 and m1 (staging.event_changes); identity and event_persons compared
    # only those with their last build, and event_persons decided again just them (m0 appeared, m1
    # moved in time), so the stream compared them only. A batch every reader of its writer has
    # read is deleted, and with the log empty every position goes back to 0
    assert [second[m]["events_compared"] for m in ("identity", "event_persons", "customer_stream")] == [2, 2, 2]
    assert query(landing.root, warehouse, "select count(*) from staging.event_changes") == [(0,)]
    assert query(landing.root, warehouse, "select distinct batch from staging.event_change_reads") == [(0,)]
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        events = con.execute("select event_key, occurred_at, _delivery_date from staging.events order by event_key").fetchall()
        removed = con.execute("select dedupe_key, _delivery_date from staging.duplicate_rows").fetchall()
    assert events == [("web:m0", dt.datetime(2025, 3, 1, 8), day1), ("web:m1", dt.datetime(2025, 3, 1, 9), day1),
                      ("web:m2", dt.datetime(2025, 3, 2, 11), day2)]
    assert removed == [("web:m1", day2)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [day1, day2])


def test_duplicates_are_ranked_again_only_for_the_keys_a_written_slice_or_a_removed_copy_holds(landing, tmp_path):
    # staging.duplicate_rows ranks again, in a daily run, the keys with a copy in a slice written
    # since its last build and the keys that had copies at it. Day 1 holds m1 and m2, day 2 another
    # copy of m1 (kept: day 1's) and m3; then day 3 brings a third copy of m1 and a copy of m3; then
    # day 2 is withdrawn: m1's day-2 copy goes, and m3's day-3 copy is no longer a copy
    warehouse = tmp_path / "w.duckdb"
    days = [dt.date(2025, 3, d) for d in (1, 2, 3)]
    lines = {days[0]: [("m1", "09:00"), ("m2", "10:00")], days[1]: [("m1", "11:00"), ("m3", "12:00")],
             days[2]: [("m1", "13:00"), ("m3", "14:00")]}
    built = []
    for day in days:
        landing.put("web", day.isoformat(), "s.jsonl", "\n".join(
            segment(m, "d1", ts=f"{day.isoformat()}T{t}:00Z") for m, t in lines[day]) + "\n")
        built.append(build(landing.root, warehouse, [day])["staging.duplicate_rows"])

    def removed() -> list[tuple]:
        return query(landing.root, warehouse, "select dedupe_key, _delivery_date, copy_number, kept_source_row "
                                              "from staging.duplicate_rows order by 1, 2")

    assert built == [{"mode": "whole", "rows": 0}, {"mode": "incremental", "rows": 1}, {"mode": "incremental", "rows": 3}]
    assert removed() == [("web:m1", days[1], 2, 1), ("web:m1", days[2], 3, 1), ("web:m3", days[2], 2, 2)]
    shutil.rmtree(landing.root / "web" / days[1].isoformat())
    withdrawn = build(landing.root, warehouse, [days[1]])
    assert withdrawn["staging.duplicate_rows"] == {"mode": "incremental", "rows": 1}
    assert removed() == [("web:m1", days[2], 2, 1)]
    # and the slice log holds nothing its readers have not read
    assert query(landing.root, warehouse, "select count(*) from staging.slice_changes") == [(0,)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [days[0], days[2]])

def test_a_whole_build_of_the_staged_events_or_a_lost_log_makes_their_readers_compare_every_event(landing, tmp_path):
    # a changed staging setting (the stores' default time zone) builds staging.events whole; the
    # readers of its change log still build incrementally, but compare all three events, not the
    # none that a log of changed rows alone would name
    warehouse = tmp_path / "w.duckdb"
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join(segment(m, d) for m, d in (("m1", "d1"), ("m2", "d2"), ("m3", "d1"))) + "\n")
    build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    again = build(landing.root, warehouse, [], store={"default_timezone": "America/Chicago"})
    assert again["staging.events"]["mode"] == "whole"
    assert [again[m]["mode"] for m in ("identity", "event_persons", "customer_stream")] == ["incremental"] * 3
    assert [again[m]["events_compared"] for m in ("identity", "event_persons", "customer_stream")] == [3, 3, 3]
    # so do they when the log went missing: what it held went with it
    with connect(settings_for(landing.root, warehouse, store={"default_timezone": "America/Chicago"})) as con:
        con.execute("drop table staging.event_changes")
    third = build(landing.root, warehouse, [], store={"default_timezone": "America/Chicago"})
    assert third["staging.events"]["mode"] == "incremental"
    assert [third[m]["events_compared"] for m in ("identity", "event_persons", "customer_stream")] == [3, 3, 3]


def test_derived_events_are_written_again_only_where_their_rows_changed(landing, tmp_path):
    # store receipts and CRM lifecycle events are worked out again in every build, but only those
    # whose rows changed are written and logged (steps/derived_changes.sql). Day 1: receipt T1 (one
    # line, 20.00) at S1 in London, contact C1 a lead. Day 2: a late second line of T1 (2 x 5.00),
    # a new receipt T2, and C1 becomes a customer: T1 changed, T2 and C1's new stage are new; C1's
    # created and lead events stay as they were
    txn = "transaction_id,line_number,store_id,occurred_at,loyalty_id,quantity,unit_price\n"
    landing.put("store", "2025-03-01", "stores.csv", "store_id,name,region,timezone\nS1,London,UK,Europe/London\n")
    landing.put("store", "2025-03-01", "transactions.csv", txn + "T1,1,S1,2025-03-01 10:00:00,L1,1,20\n")
    landing.put("crm", "2025-03-01", "contacts.csv", CONTACT_HEADER + "C1,ann@example.com,,,L1,lead,GB,2025-03-01T08:00:00Z,2025-03-01T08:00:00Z,false\n")
    warehouse = tmp_path / "w.duckdb"
    first = build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    assert first["staging.events"] == {"mode": "whole", "rows_written": 3}
    landing.put("store", "2025-03-02", "transactions.csv", txn + "T1,2,S1,2025-03-01 10:00:00,L1,2,5\nT2,1,S1,2025-03-02 11:00:00,L1,1,30\n")
    landing.put("crm", "2025-03-02", "contacts.csv", CONTACT_HEADER + "C1,ann@example.com,,,L1,customer,GB,2025-03-01T08:00:00Z,2025-03-02T09:00:00Z,false\n")
    second = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert second["staging.events"] == {"mode": "incremental", "rows_written": 3, "contacts_worked_out_again": 1}
    assert [second[m]["events_compared"] for m in ("identity", "event_persons")] == [3, 3]
    # day 3: S1's time zone is corrected to New York; both its receipts move, nothing else changes
    landing.put("store", "2025-03-03", "stores.csv", "store_id,name,region,timezone\nS1,London,UK,America/New_York\n")
    third = build(landing.root, warehouse, [dt.date(2025, 3, 3)])
    assert third["staging.events"] == {"mode": "incremental", "rows_written": 2, "contacts_worked_out_again": 0}
    assert [third[m]["events_compared"] for m in ("identity", "event_persons")] == [2, 2]
    assert query(landing.root, warehouse, "select event_key, occurred_at, revenue from staging.events where source = 'store' order by 1") == [
        ("store:S1:T1:sale", dt.datetime(2025, 3, 1, 15), 30.0), ("store:S1:T2:sale", dt.datetime(2025, 3, 2, 16), 30.0)]
    # day 2's contact snapshot is withdrawn: C1's customer stage goes, and only its row is removed
    shutil.rmtree(landing.root / "crm" / "2025-03-02")
    fourth = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert fourth["staging.events"] == {"mode": "incremental", "rows_written": 0, "contacts_worked_out_again": 1}
    assert [fourth[m]["events_compared"] for m in ("identity", "event_persons")] == [1, 1]
    assert query(landing.root, warehouse, "select activity, touchpoint from staging.events where source = 'crm' order by 1, 2") == [
        ("created_contact", "lead"), ("entered_lifecycle_stage", "lead")]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, d) for d in (1, 2, 3)])
    # the comparison covers every column of staging.events (a column left out would hide its changes)
    compared = re.findall(r"rebuilt\.(\w+) is distinct from kept\.\1", staging.DERIVED_CHANGES.read_text())
    columns = query(landing.root, warehouse, "select column_name from information_schema.columns "
                                             "where table_schema = 'staging' and table_name = 'events' order by ordinal_position")
    assert ["event_key", *compared] == [c for (c,) in columns]


def test_only_the_contacts_whose_snapshot_rows_changed_have_their_lifecycle_events_worked_out_again(landing, tmp_path):
    # Day 1: contact C1 with no stage and no created or updated time -- a version dated by its
    # delivery, with no event of its own. Day 2: C1 a lead since 2 March (created 20 February), its
    # second version, and C2 a lead. Day 3 repeats C1's day-1 row unchanged: a copy. Withdrawing
    # day 1 moves that version to day 3's copy, after the lead: the lead becomes C1's first version
    # and C1's creation appears, though no event of C1 came from day 1. Each run works out again the
    # lifecycle events of the contacts whose snapshot rows it wrote or removed: C1 only, after day 2
    lines = {1: ["C1,,,,,,GB,,,false"],
             2: ["C1,,,,,lead,GB,2025-02-20T00:00:00Z,2025-03-02T00:00:00Z,false",
                 "C2,bob@example.com,,,,lead,GB,2025-02-01T08:00:00Z,2025-02-01T08:00:00Z,false"],
             3: ["C1,,,,,,GB,,,false"]}
    warehouse = tmp_path / "w.duckdb"
    built, versions = [], []
    for day, rows in lines.items():
        landing.put("crm", f"2025-03-0{day}", "contacts.csv", CONTACT_HEADER + "\n".join(rows) + "\n")
        figures = build(landing.root, warehouse, [dt.date(2025, 3, day)])
        built.append(figures["staging.events"])
        versions.append([figures[m] for m in ("staging.contact_versions", "staging.contacts")])

    def lifecycle() -> list[tuple]:
        return query(landing.root, warehouse, "select contact_id, activity, occurred_at from staging.events "
                                              "where source_format = 'crm_contacts' order by 1, 2")

    assert built == [{"mode": "whole", "rows_written": 0},
                     {"mode": "incremental", "rows_written": 3, "contacts_worked_out_again": 2},
                     {"mode": "incremental", "rows_written": 0, "contacts_worked_out_again": 1}]
    assert lifecycle() == [("C1", "entered_lifecycle_stage", dt.datetime(2025, 3, 2)),
                           ("C2", "created_contact", dt.datetime(2025, 2, 1, 8)), ("C2", "entered_lifecycle_stage", dt.datetime(2025, 2, 1, 8))]
    # the contacts' versions and latest versions are built again for the same contacts
    assert versions == [[{"mode": "whole", "rows": 1}, {"mode": "whole", "rows": 1}],
                        [{"mode": "incremental", "contacts_worked_out_again": 2, "rows": 3},
                         {"mode": "incremental", "contacts_worked_out_again": 2, "rows": 2}],
                        [{"mode": "incremental", "contacts_worked_out_again": 1, "rows": 2},
                         {"mode": "incremental", "contacts_worked_out_again": 1, "rows": 1}]]
    shutil.rmtree(landing.root / "crm" / "2025-03-01")
    figures = build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    withdrawn = figures["staging.events"]
    assert withdrawn == {"mode": "incremental", "rows_written": 1, "contacts_worked_out_again": 1}
    assert [figures[m] for m in ("staging.contact_versions", "staging.contacts")] == [
        {"mode": "incremental", "contacts_worked_out_again": 1, "rows": 2}, {"mode": "incremental", "contacts_worked_out_again": 1, "rows": 1}]
    assert query(landing.root, warehouse, "select contact_id, version_number, lifecycle_stage, _delivery_date from staging.contact_versions "
                                          "order by 1, 2") == [("C1", 1, "lead", dt.date(2025, 3, 2)), ("C1", 2, None, dt.date(2025, 3, 3)),
                                                               ("C2", 1, "lead", dt.date(2025, 3, 2))]
    assert lifecycle() == [("C1", "created_contact", dt.datetime(2025, 2, 20)), ("C1", "entered_lifecycle_stage", dt.datetime(2025, 3, 2)),
                           ("C2", "created_contact", dt.datetime(2025, 2, 1, 8)), ("C2", "entered_lifecycle_stage", dt.datetime(2025, 2, 1, 8))]
    assert query(landing.root, warehouse, "select count(*) from staging.changed_contacts") == [(0,)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, d) for d in (1, 2, 3)])


def test_a_reader_of_another_readers_rows_rebuilds_whole_when_that_readers_sql_changed(landing, tmp_path, monkeypatch):
    # stage_spells, funnel_levels and journey_paths read event_stages' rows: when event_stages' SQL changes it is
    # built again whole, and its rows may change where the stream did not, so they must be too
    # (StreamReader.reads); the readers that do not read it stay incremental
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([segment("m1", "d1"), segment("m2", "d2")]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    changed = tmp_path / "event_stages.sql"
    changed.write_text(journeys.sql_path("stages", "event_stages").read_text() + "\n-- a changed comment\n")
    real = journeys.sql_path
    monkeypatch.setattr(journeys, "sql_path", lambda layer, name: changed if (layer, name) == ("stages", "event_stages") else real(layer, name))
    landing.put("web", "2025-03-02", "s.jsonl", segment("m3", "d1", ts="2025-03-02T10:00:00Z") + "\n")
    second = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert {m: second[m]["mode"] for m in journeys.STREAM_READERS} == {
        "journeys.customer_activity": "incremental", "journeys.touches": "incremental", "journeys.journey_paths": "whole",
        "stages.event_stages": "whole", "stages.funnel_levels": "whole", "stages.funnel_units": "incremental",
        "stages.stage_spells": "whole"}

def test_withdrawing_a_shared_devices_nearest_login_moves_its_anonymous_event_back(landing, tmp_path):
    # docs/journeys.md, nearest_identified_event: device D is refused (two logins, u2 and u3, one
    # user id per person), so its anonymous page view at 10:00 takes the person of the nearest
    # event on D with a usable identifier. Day 2 brings u1 on D at 10:01; when day 2 is withdrawn,
    # the page view must go back to u2 (10:10) -- although nothing about its own identifiers
    # changed, only a sighting of the refused D disappeared.
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m0", "D", ts="2025-03-01T10:00:00Z"),
        segment("m1", "D", "u2", ts="2025-03-01T10:10:00Z"),
        segment("m2", "D", "u3", ts="2025-03-01T12:00:00Z"),
    ]) + "\n")
    landing.put("web", "2025-03-02", "s.jsonl", segment("m4", "D", "u1", ts="2025-03-01T10:01:00Z") + "\n")
    warehouse = tmp_path / "w.duckdb"
    days = [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]
    build(landing.root, warehouse, days)
    person = {m: "p_" + hashlib.md5(f"user_id:{u}".encode()).hexdigest()[:16] for m, u in (("u1", "u1"), ("u2", "u2"))}

    def decided() -> tuple[str, str]:
        with connect(settings_for(landing.root, warehouse), read_only=True) as con:
            return con.execute("select person_id, person_rule from journeys.event_persons where event_key = 'web:m0'").fetchall()[0]

    assert decided() == (person["u1"], "nearest_identified_event")
    shutil.rmtree(landing.root / "web" / "2025-03-02")
    after = build(landing.root, warehouse, days[1:])
    assert after["event_persons"]["mode"] == "incremental"
    assert decided() == (person["u2"], "nearest_identified_event")
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", days[:1])


def test_a_late_anonymous_event_on_a_shared_device_takes_the_nearest_login_already_kept(landing, tmp_path):
    # device D is refused (logins u2 and u3); day 2 brings a page view on D at 10:00 of day 1, with
    # no identifier of its own but D: the daily run decides it from u2's login at 10:10, an event of
    # day 1 that the run does not decide again but whose person it must read
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "D", "u2", ts="2025-03-01T10:10:00Z"),
        segment("m2", "D", "u3", ts="2025-03-01T12:00:00Z"),
    ]) + "\n")
    landing.put("web", "2025-03-02", "s.jsonl", segment("m0", "D", ts="2025-03-01T10:00:00Z") + "\n")
    warehouse = tmp_path / "w.duckdb"
    days = [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]
    build(landing.root, warehouse, days[:1])
    after = build(landing.root, warehouse, days[1:])
    assert after["event_persons"]["mode"] == "incremental"
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        decided = con.execute("select person_id, person_rule from journeys.event_persons where event_key = 'web:m0'").fetchall()[0]
    assert decided == ("p_" + hashlib.md5(b"user_id:u2").hexdigest()[:16], "nearest_identified_event")
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", days)


def test_a_corrected_delivery_updates_the_sightings_and_links_of_the_records_it_changed(landing, tmp_path):
    # docs/performance.md, "The identity region": a day delivered again with corrections. m1's
    # login was u1 and is u2; m2 happened at 10:00 and is at 11:00 (nothing else about it
    # changed); m3 (d3 + u3) is the same. Only m1 and m2 are records that changed: their old
    # sightings and links go, their new ones come; m3's stay.
    day = dt.date(2025, 3, 1)
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d1", "u1"), segment("m2", "d2", ts="2025-03-01T10:00:00Z"), segment("m3", "d3", "u3"),
    ]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [day])
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d1", "u2"), segment("m2", "d2", ts="2025-03-01T11:00:00Z"), segment("m3", "d3", "u3"),
    ]) + "\n")
    after = build(landing.root, warehouse, [day])
    assert after["identity"]["mode"] == "incremental"
    # touched: the link (d1, u1) went and (d1, u2) came; u1 disappeared and u2 appeared. The link
    # component of d1 and u1 is the region; d2 and d3 + u3 are not touched (m2's time is not a link)
    assert after["identity"]["identifiers_resolved_again"] == 3  # d1, u1, u2
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        sightings = con.execute("select event_key, identifier, strftime(occurred_at, '%H:%M') from identity.identifier_sightings "
                                "order by all").fetchall()
        assert sightings == [
            ("web:m1", "anonymous_id:d1", "10:00"), ("web:m1", "user_id:u2", "10:00"),
            ("web:m2", "anonymous_id:d2", "11:00"),
            ("web:m3", "anonymous_id:d3", "10:00"), ("web:m3", "user_id:u3", "10:00"),
        ]
        links = con.execute("select left_identifier, right_identifier, event_key from identity.identifier_links order by all").fetchall()
        assert links == [("anonymous_id:d1", "user_id:u2", "web:m1"), ("anonymous_id:d3", "user_id:u3", "web:m3")]
        # the view of each record's identifiers holds every record again after the run, not the changed ones only
        assert con.execute("select event_key, anonymous_id, user_id from identity.record_identifiers order by all").fetchall() == [
            ("web:m1", "anonymous_id:d1", "user_id:u2"), ("web:m2", "anonymous_id:d2", None), ("web:m3", "anonymous_id:d3", "user_id:u3")]
        assert con.execute("select count(*) from identity.identity_map where identifier = 'user_id:u1'").fetchall() == [(0,)]
        assert con.execute("select strftime(occurred_at, '%H:%M') from journeys.customer_stream where event_key = 'web:m2'"
                           ).fetchall() == [("11:00",)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [day])


def test_a_merge_re_decides_the_links_of_the_whole_region_not_only_the_new_ones(landing, tmp_path):
    # day 1: person A is device d7 with login u3 and ann's address (one identify: three links);
    # person B is device d9 with contact C5. Day 2: d9 logs in as u3, so A joins B and takes B's
    # id (anchored on C5). The link (d7, ann's address) touches neither end of the new link
    # (d9, u3), yet its person changed: identity.link_decisions decides again every pair with an
    # end in the region.
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d7", "u3", "ann@example.com"),
        segment("m2", "d9", url="https://shop.example.com/?cid=C5&utm_medium=email"),
    ]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    landing.put("web", "2025-03-02", "s.jsonl", segment("m4", "d9", "u3", ts="2025-03-02T10:00:00Z") + "\n")
    after = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert after["identity"]["mode"] == "incremental"
    merged = "p_" + hashlib.md5(b"contact_id:C5").hexdigest()[:16]
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        decisions = con.execute("select left_identifier, right_identifier, decision, person_id from identity.link_decisions "
                                "where left_identifier = 'anonymous_id:d7' and right_identifier like 'email:%'").fetchall()
        assert [(d, p) for _, _, d, p in decisions] == [("merged", merged)]
        assert con.execute("select count(*), count(distinct person_id) from identity.link_decisions").fetchall() == [(5, 1)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)])


def test_a_known_link_seen_again_has_only_its_own_pair_decided_again(landing, tmp_path):
    # day 1: u3 logs in on devices d3 and d5 (two links), u8 on d8. Day 2: d3 + u3 again. No link
    # or identifier appeared or went, so no identifier is resolved again; only the pair (d3, u3)
    # gained evidence, so only it is decided again -- not (d5, u3), which shares the end u3.
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d3", "u3"), segment("m2", "d5", "u3", ts="2025-03-01T11:00:00Z"), segment("m3", "d8", "u8"),
    ]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [dt.date(2025, 3, 1)])
    landing.put("web", "2025-03-02", "s.jsonl", segment("m4", "d3", "u3", ts="2025-03-02T09:00:00Z") + "\n")
    after = build(landing.root, warehouse, [dt.date(2025, 3, 2)])
    assert after["identity"]["mode"] == "incremental"
    assert after["identity"]["identifiers_resolved_again"] == 0
    assert after["identity"]["pairs_decided_again"] == 1
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        decisions = con.execute("select left_identifier, right_identifier, evidence_count, strftime(last_seen_at, '%m-%d %H:%M'), decision "
                                "from identity.link_decisions order by all").fetchall()
        assert decisions == [
            ("anonymous_id:d3", "user_id:u3", 2, "03-02 09:00", "merged"),
            ("anonymous_id:d5", "user_id:u3", 1, "03-01 11:00", "merged"),
            ("anonymous_id:d8", "user_id:u8", 1, "03-01 10:00", "merged"),
        ]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [dt.date(2025, 3, 1), dt.date(2025, 3, 2)])


def test_a_link_still_held_by_another_record_does_not_disappear(landing, tmp_path):
    # docs/performance.md, "The identity region": (d1, u1) has evidence 2 (m1 and m5); m1 is
    # delivered again without its login. Its old link is one of the pair's two rows, so the pair is
    # still linked (by m5): no link or identifier appeared or disappeared, nothing is resolved
    # again, and only the pair's decision is made again, with evidence 1.
    day = dt.date(2025, 3, 1)
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d1", "u1"), segment("m5", "d1", "u1", ts="2025-03-01T11:00:00Z"), segment("m3", "d3", "u3"),
    ]) + "\n")
    warehouse = tmp_path / "w.duckdb"
    build(landing.root, warehouse, [day])
    landing.put("web", "2025-03-01", "s.jsonl", "\n".join([
        segment("m1", "d1"), segment("m5", "d1", "u1", ts="2025-03-01T11:00:00Z"), segment("m3", "d3", "u3"),
    ]) + "\n")
    after = build(landing.root, warehouse, [day])
    assert after["identity"]["mode"] == "incremental"
    assert after["identity"]["identifiers_resolved_again"] == 0
    assert after["identity"]["pairs_decided_again"] == 1
    with connect(settings_for(landing.root, warehouse), read_only=True) as con:
        assert con.execute("select left_identifier, right_identifier, evidence_count from identity.link_decisions order by all").fetchall() == [
            ("anonymous_id:d1", "user_id:u1", 1), ("anonymous_id:d3", "user_id:u3", 1)]
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [day])


def test_a_corrected_survey_score_moves_the_event_to_its_stage_in_a_daily_run(landing, tmp_path):
    # the stream keeps attributes.score (not the attributes JSON): a re-delivered survey whose
    # score alone changed is compared by it, so its person's stream and stages are built again
    header = "activity_id,contact_id,activity_type,occurred_at,channel,score\n"
    day = dt.date(2025, 3, 1)
    warehouse = tmp_path / "w.duckdb"
    landing.put("crm", "2025-03-01", "contacts.csv", "contact_id,email,user_id\nC1,ann@example.com,u1\n")
    survey = landing.put("crm", "2025-03-01", "activities.csv", header + "A1,C1,survey_response,2025-03-01T10:00:00Z,web,6\n")
    build(landing.root, warehouse, [day])
    stage = "select stage from stages.event_stages where stage_model = 'default' and event_key = 'crm:activity:A1'"
    assert query(landing.root, warehouse, stage) == []  # a passive's answer: no stage of the default model
    survey.write_text(header + "A1,C1,survey_response,2025-03-01T10:00:00Z,web,10\n")
    after = build(landing.root, warehouse, [day])
    assert after["customer_stream"]["mode"] == "incremental" and after["customer_stream"]["persons_built_again"] == 1
    assert query(landing.root, warehouse, "select score from journeys.customer_stream") == [(10.0,)]
    assert query(landing.root, warehouse, stage) == [("advocacy",)]  # a promoter
    assert_equal_to_a_whole_rebuild(landing.root, warehouse, tmp_path / "whole.duckdb", [day])

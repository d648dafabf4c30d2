"""The customer stream: person assignment, order, sessions and journeys on hand-worked events."""

from __future__ import annotations

import datetime as dt
import json

from journey_analytics import identity, journeys
from journey_analytics.warehouse import build_in_parts, connect, fetch, part_bounds

from tests.conftest import load, settings_for


def page(message_id, device, ts, user=None, email=None, path="/"):
    m = {"type": "identify" if email else "page", "messageId": message_id, "timestamp": ts, "anonymousId": device,
         "context": {"page": {"url": "https://shop.example.com" + path}}}
    if user:
        m["userId"] = user
    if email:
        m["traits"] = {"email": email}
    return json.dumps(m)


def order(message_id, device, ts, user):
    return json.dumps({"type": "track", "event": "Order Completed", "messageId": message_id, "timestamp": ts, "anonymousId": device,
                       "userId": user, "properties": {"order_id": "O" + message_id, "revenue": 10}})


def stream(landing, tmp_path, **overrides):
    settings = load(landing.root, tmp_path / "w.duckdb", **overrides)
    with connect(settings) as con:
        identity.resolve(con, settings)
        for model in journeys.MODELS:
            journeys.build_journey_model(con, model, settings)
        return fetch(con, "select * from journeys.customer_stream order by person_id, sequence_number")


def test_a_late_login_restitches_months_old_anonymous_events(landing, tmp_path):
    landing.put("web", "2025-01-05", "a.jsonl", page("m1", "d1", "2025-01-05T10:00:00Z") + "\n")
    landing.put("web", "2025-05-20", "b.jsonl", page("m2", "d1", "2025-05-20T10:00:00Z", user="u1") + "\n")
    rows = stream(landing, tmp_path)
    assert rows["person_id"].n_unique() == 1
    assert rows["event_key"].to_list() == ["web:m1", "web:m2"]
    # more than 30 days apart: two journeys, two sessions
    assert rows["journey_number"].to_list() == [1, 2]
    assert rows["session_key"].to_list() == ["session:web:m1", "session:web:m2"]


def test_events_at_the_same_instant_from_different_sources_are_ordered_web_email_crm_store(landing, tmp_path):
    ts = "2025-03-01T12:00:00Z"
    landing.put("web", "2025-03-01", "w.jsonl", page("m1", "d1", ts, user="u1", email="ann@example.com") + "\n")
    landing.put("email", "2025-03-01", "e.jsonl", json.dumps({"email": "ann@example.com", "timestamp": 1740830400, "event": "open",
                                                               "sg_event_id": "z1"}) + "\n")
    landing.put("crm", "2025-03-01", "activities.csv", "activity_id,contact_id,activity_type,occurred_at,channel\nA1,C1,call,2025-03-01T12:00:00Z,phone\n")
    landing.put("crm", "2025-03-01", "contacts.csv", "contact_id,email,user_id\nC1,ann@example.com,u1\n")
    landing.put("store", "2025-03-01", "transactions.csv", "transaction_id,line_number,store_id,occurred_at,receipt_email,quantity,unit_price\n"
                "T1,1,S1,2025-03-01 12:00:00,ann@example.com,1,5\n")
    first = stream(landing, tmp_path)
    at_noon = first.filter(first["occurred_at"] == dt.datetime(2025, 3, 1, 12))
    assert at_noon["person_id"].n_unique() == 1
    assert at_noon["event_key"].to_list() == ["web:m1", "email:z1", "crm:activity:A1", "store:S1:T1:sale"]
    again = stream(landing, tmp_path)  # rebuilt from scratch: the same order
    assert again.select("event_key", "sequence_number").equals(first.select("event_key", "sequence_number"))


def test_a_shared_device_gives_each_anonymous_event_to_the_person_identified_nearest_in_time(landing, tmp_path):
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join([
        page("a1", "family-laptop", "2025-03-01T09:00:00Z", user="ann"),
        page("a2", "family-laptop", "2025-03-01T09:20:00Z"),          # 20 min after ann, 10 h 40 before bob
        page("a3", "family-laptop", "2025-03-01T09:25:00Z"),          # 5 min after a2, which has no usable identifier
        page("b1", "family-laptop", "2025-03-01T20:00:00Z", user="bob"),
        page("b2", "family-laptop", "2025-03-01T21:00:00Z"),          # 1 h after bob
        page("z9", "family-laptop", "2025-03-02T20:00:00Z", user="bob"),  # bob logs in last of all
    ]) + "\n")
    rows = stream(landing, tmp_path)
    person = dict(zip(rows["event_key"].to_list(), rows["person_id"].to_list()))
    rule = dict(zip(rows["event_key"].to_list(), rows["person_rule"].to_list()))
    # the nearest event *identified* on the device: a3 is nearer to a2 than ann's a1, but has only
    # the refused device itself, so neither takes the other's (or the device's own) person
    assert person["web:a2"] == person["web:a3"] == person["web:a1"] != person["web:b1"]
    assert person["web:b2"] == person["web:b1"] == person["web:z9"]
    assert rule["web:a2"] == rule["web:a3"] == rule["web:b2"] == "nearest_identified_event"


def family_receipt(landing, tmp_path, identifiers):
    """Receipt T1 (2025-03-01 12:00) carrying only the family email, the stream built: the receipt's
    stream row, and the persons of `identifiers` in identity.identity_map."""
    landing.put("store", "2025-03-01", "transactions.csv", "transaction_id,line_number,store_id,occurred_at,receipt_email,quantity,unit_price\n"
                "T1,1,S1,2025-03-01 12:00:00,family@example.com,1,5\n")
    rows = stream(landing, tmp_path)
    receipt = rows.filter(rows["event_key"] == "store:S1:T1:sale").row(0, named=True)
    with connect(settings_for(landing.root, tmp_path / "w.duckdb"), read_only=True) as con:
        person = dict(con.execute("select identifier, person_id from identity.identity_map where list_contains($wanted, identifier)",
                                  {"wanted": identifiers}).fetchall())
    return receipt, person


def test_a_receipt_with_only_a_shared_email_goes_to_the_nearest_crm_contact_on_it(landing, tmp_path):
    # two contacts share the family address, so the email is refused (one contact per person); the
    # receipt carries only that email: its person is that of the contact version nearest in time
    # (C2, updated 4 days before the receipt; C1 was updated 27 days before), a CRM record, not an event
    landing.put("crm", "2025-03-01", "contacts.csv", "contact_id,email,updated_at\n"
                "C1,family@example.com,2025-02-02T12:00:00Z\nC2,family@example.com,2025-02-25T12:00:00Z\n")
    receipt, person = family_receipt(landing, tmp_path, ["contact_id:C2"])
    assert receipt["person_rule"] == "nearest_identified_event"
    assert receipt["person_id"] == person["contact_id:C2"]


def test_the_nearest_identified_record_gives_the_person_of_its_highest_priority_usable_identifier(landing, tmp_path):
    # C1 held login u1, then u2: seen with two logins, its links to them are refused (docs/identity.md,
    # rule 3), so its version of 2025-02-27 carries two usable identifiers of different persons,
    # C1's and u2's. The family email is refused (two contacts). The receipt's nearest identified
    # record on it is that version (2 days before): its person is that of its contact id, which
    # comes before a login in identity.priority
    header = "contact_id,email,user_id,updated_at\n"
    landing.put("crm", "2025-02-01", "contacts.csv", header + "C1,family@example.com,u1,2025-02-01T12:00:00Z\n"
                "C2,family@example.com,,2025-02-01T12:00:00Z\n")
    landing.put("crm", "2025-02-27", "contacts.csv", header + "C1,family@example.com,u2,2025-02-27T12:00:00Z\n"
                "C2,family@example.com,,2025-02-01T12:00:00Z\n")
    receipt, person = family_receipt(landing, tmp_path, ["contact_id:C1", "user_id:u2"])
    assert person["contact_id:C1"] != person["user_id:u2"]
    assert receipt["person_rule"] == "nearest_identified_event"
    assert receipt["person_id"] == person["contact_id:C1"]


def test_sessions_end_after_30_minutes_idle_and_are_cut_at_the_maximum_length(landing, tmp_path):
    times = ["2025-03-01T10:00:00Z", "2025-03-01T10:25:00Z", "2025-03-01T10:56:00Z",  # 31 min gap: new session at 10:56
             "2025-03-01T11:20:00Z", "2025-03-01T11:45:00Z"]  # within 1 h of 10:56: same session
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join(page(f"m{i}", "d1", t, user="u1") for i, t in enumerate(times)) + "\n")
    rows = stream(landing, tmp_path, journeys={"max_session_hours": 1})
    assert rows["session_key"].to_list() == ["session:web:m0", "session:web:m0", "session:web:m2", "session:web:m2", "session:web:m2"]


def test_a_bot_session_is_cut_into_parts_of_the_maximum_length(landing, tmp_path):
    # an event every 20 minutes for 3 hours: never idle for 30 minutes; max length 1 hour
    times = [f"2025-03-01T{10 + m // 60:02d}:{m % 60:02d}:00Z" for m in range(0, 181, 20)]
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join(page(f"m{i:02d}", "bot", t) for i, t in enumerate(times)) + "\n")
    rows = stream(landing, tmp_path, journeys={"max_session_hours": 1})
    # parts start at 10:00, 11:00, 12:00 and 13:00 from the visit's start
    assert rows["session_key"].to_list() == ["session:web:m00"] * 3 + ["session:web:m03"] * 3 + ["session:web:m06"] * 3 + ["session:web:m09"]


def test_a_purchase_ends_a_journey_and_the_next_touch_starts_another(landing, tmp_path):
    landing.put("web", "2025-03-01", "w.jsonl", page("m1", "d1", "2025-03-01T10:00:00Z", user="u1") + "\n")
    landing.put("web", "2025-03-03", "w.jsonl", order("m2", "d1", "2025-03-03T10:00:00Z", "u1") + "\n")
    landing.put("web", "2025-03-04", "w.jsonl", page("m3", "d1", "2025-03-04T10:00:00Z", user="u1") + "\n")
    landing.put("web", "2025-04-10", "w.jsonl", page("m4", "d1", "2025-04-10T10:00:00Z", user="u1") + "\n")  # 37 days on
    rows = stream(landing, tmp_path)
    assert rows["journey_number"].to_list() == [1, 1, 2, 3]
    assert rows["is_journey_start"].to_list() == [True, False, True, True]
    assert rows["activity"].to_list() == ["viewed_page", "completed_order", "viewed_page", "viewed_page"]
    assert rows["activity_occurrence"].to_list() == [1, 1, 2, 3]
    assert rows["activity_repeated_at"].to_list() == [dt.datetime(2025, 3, 4, 10), None, dt.datetime(2025, 4, 10, 10), None]


def test_the_stream_carries_the_attributes_score_as_a_number_and_leaves_the_page_and_attributes_in_staging(landing, tmp_path):
    landing.put("crm", "2025-03-01", "activities.csv", "activity_id,contact_id,activity_type,occurred_at,channel,score\n"
                "A1,C1,survey_response,2025-03-01T10:00:00Z,web,9\n"  # a number: 9.0
                "A2,C1,survey_response,2025-03-01T11:00:00Z,web,\n"  # no score: null
                "A3,C1,call,2025-03-01T12:00:00Z,phone,0\n")  # zero is a score, not a missing one
    landing.put("web", "2025-03-01", "w.jsonl", page("m1", "d1", "2025-03-01T13:00:00Z", user="u1", path="/shoes") + "\n")
    landing.put("crm", "2025-03-01", "contacts.csv", "contact_id,email,user_id\nC1,ann@example.com,u1\n")
    rows = stream(landing, tmp_path)
    assert rows["event_key"].to_list() == ["crm:activity:A1", "crm:activity:A2", "crm:activity:A3", "web:m1"]
    assert rows["score"].to_list() == [9.0, None, 0.0, None]
    assert "page_url" not in rows.columns and "attributes" not in rows.columns
    # one join away, by event_key (docs/journeys.md)
    settings = load(landing.root, tmp_path / "w.duckdb")
    with connect(settings, read_only=True) as con:
        page_url = fetch(con, "select staged.page_url from journeys.customer_stream as stream "
                              "inner join staging.events as staged on staged.event_key = stream.event_key where stream.source = 'web'")
    assert page_url.item() == "https://shop.example.com/shoes"


def test_the_stream_built_in_parts_of_the_persons_equals_the_stream_built_whole(landing, tmp_path, monkeypatch):
    import duckdb

    # eight persons, each with two sessions of two pages and an order that ends a journey
    lines = []
    for n in range(1, 9):
        lines += [page(f"a{n}", f"d{n}", f"2025-03-0{n}T10:00:00Z", user=f"u{n}"), page(f"b{n}", f"d{n}", f"2025-03-0{n}T10:05:00Z"),
                  order(f"c{n}", f"d{n}", f"2025-03-0{n}T12:00:00Z", f"u{n}"), page(f"e{n}", f"d{n}", f"2025-03-0{n}T12:10:00Z")]
    landing.put("web", "2025-03-09", "s.jsonl", "\n".join(lines) + "\n")
    whole = stream(landing, tmp_path / "whole")
    monkeypatch.setattr(journeys, "parts_for", lambda rows, bytes_per_row, memory_limit: 3)
    built = []
    monkeypatch.setattr(journeys, "build_in_parts", lambda *args: built.append(build_in_parts(*args)) or built[-1])
    in_parts = stream(landing, tmp_path / "parts")
    assert whole.height == 32 and whole["person_id"].n_unique() == 8
    assert in_parts.equals(whole)
    # three ranges of the person ids, by their events: 4 each, so rows before 0, 4, ... 28 of 32,
    # in thirds (x 3 // 32) 0, 0, 0, 1, 1, 1, 2, 2: three persons, three, two
    assert built == [3]
    persons = sorted(whole["person_id"].unique().to_list())
    with duckdb.connect(str(tmp_path / "parts" / "w.duckdb"), read_only=True) as con:
        assert part_bounds(con, "journeys.event_persons", "person_id", 3) == [persons[0], persons[3], persons[6]]
        # recorded for the readers built in the same ranges
        assert journeys.stream_ranges(con) == [persons[0], persons[3], persons[6]]
    with duckdb.connect(str(tmp_path / "whole" / "w.duckdb"), read_only=True) as con:
        assert journeys.stream_ranges(con) == [None]


def test_the_stream_is_built_in_as_many_parts_as_the_memory_limit_needs():
    import duckdb

    from journey_analytics.warehouse import memory_limit_bytes, parts_for

    limit = memory_limit_bytes(duckdb.connect(config={"memory_limit": "100MB"}))
    assert limit == 95.3 * 2**20  # DuckDB reports 100MB as '95.3 MiB': 99,928,883 bytes
    per_event = journeys.STREAM_BYTES_PER_EVENT
    assert parts_for(120_000, per_event, limit) == 1  # 120,000 x 800 bytes = 96.0M <= 99.9M
    assert parts_for(300_000, per_event, limit) == 3  # 300,000 x 800 = 240.0M: 2.4 limits

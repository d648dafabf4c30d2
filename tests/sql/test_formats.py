"""Each input format, loaded end to end into staging, with answers worked out by hand."""

from __future__ import annotations

import datetime as dt
import json
import shutil

from journey_analytics import privacy
from journey_analytics.settings import DEMO_SALT

from tests.conftest import TEST_DATA


def h(value: str) -> str:
    return privacy.hash_value(value, DEMO_SALT)


def test_segment_message_delivered_twice_is_staged_once(landing, run):
    page = {"type": "page", "messageId": "m1", "timestamp": "2025-03-01T10:00:00+01:00", "anonymousId": "a1",
            "context": {"page": {"url": "https://shop.example.com/new?utm_source=google&utm_medium=cpc&utm_campaign=brand",
                                 "path": "/new", "referrer": "https://www.google.com/"}}}
    identify = {"type": "identify", "messageId": "m2", "timestamp": "2025-03-01T09:05:00Z", "anonymousId": "a1", "userId": "u1",
                "traits": {"email": " Jo.Smith@Example.COM ", "phone": "07700 900123"}}
    landing.put("web", "2025-03-01", "a.jsonl", json.dumps(page) + "\n" + json.dumps(identify) + "\n")
    landing.put("web", "2025-03-02", "b.jsonl", json.dumps(page) + "\n", gz=True)  # at-least-once: again, gzipped
    q = run()
    events = q("select * from staging.events order by event_key")
    assert events["event_key"].to_list() == ["web:m1", "web:m2"]
    first = events.row(0, named=True)
    assert first["occurred_at"] == dt.datetime(2025, 3, 1, 9, 0)  # 10:00 at +01:00 is 09:00 UTC
    assert first["activity"] == "viewed_page"
    assert first["channel"] == "paid_search"
    assert (first["campaign_source"], first["campaign_medium"], first["campaign_name"]) == ("google", "cpc", "brand")
    assert first["_source_file"] == "web/2025-03-01/a.jsonl"  # the first delivery is the copy kept
    second = events.row(1, named=True)
    assert second["email_hash"] == h("jo.smith@example.com")
    assert second["phone_hash"] == h("+447700900123")
    assert second["user_id"] == "u1"
    dupes = q("select _source_file, _source_row, kept_source_file from staging.duplicate_rows")
    assert dupes.rows() == [("web/2025-03-02/b.jsonl.gz", 1, "web/2025-03-01/a.jsonl")]
    audit = q("select _source_file, rows_read, rows_staged, rows_quarantined, rows_duplicate, is_balanced from staging.load_audit order by 1")
    assert audit.rows() == [("web/2025-03-01/a.jsonl", 2, 2, 0, 0, True), ("web/2025-03-02/b.jsonl.gz", 1, 0, 0, 1, True)]


def test_sendgrid_array_and_json_lines_files(landing, run):
    array = [
        {"email": "ann@example.com", "timestamp": 1741251600, "event": "delivered", "sg_event_id": "e1", "sg_message_id": "s1",
         "category": ["newsletter", "spring"], "campaign": "spring_sale", "contact_id": "C1"},
        {"email": "ann@example.com", "timestamp": 1741255200, "event": "open", "sg_event_id": "e2", "sg_message_id": "s1",
         "category": "newsletter", "campaign": "spring_sale"},
    ]
    lines = {"email": "ANN@example.com", "timestamp": 1741258800, "event": "click", "sg_event_id": "e3", "sg_message_id": "s1",
             "url": "https://shop.example.com/?cid=C1", "campaign": "spring_sale"}
    landing.put("email", "2025-03-06", "events.json", json.dumps(array))
    landing.put("email", "2025-03-06", "more.jsonl", json.dumps(lines) + "\n")
    q = run()
    events = q("select event_key, activity, channel, occurred_at, email_hash, contact_id, campaign_name from staging.events order by event_key")
    # 1741251600 = 2025-03-06 09:00:00 UTC; then +1 h and +2 h
    assert events.rows() == [
        ("email:e1", "received_email", "email", dt.datetime(2025, 3, 6, 9), h("ann@example.com"), "C1", "spring_sale"),
        ("email:e2", "opened_email", "email", dt.datetime(2025, 3, 6, 10), h("ann@example.com"), None, "spring_sale"),
        ("email:e3", "clicked_email", "email", dt.datetime(2025, 3, 6, 11), h("ann@example.com"), None, "spring_sale"),
    ]
    assert q("select sum(rows_read), sum(rows_staged) from staging.load_audit").rows() == [(3, 3)]


CONTACT_HEADER = "contact_id,email,phone,user_id,loyalty_id,lifecycle_stage,country,created_at,updated_at,is_deleted\n"


def test_two_contact_snapshots_with_a_lifecycle_change(landing, run):
    landing.put("crm", "2025-03-03", "contacts_0303.csv", CONTACT_HEADER
                + "C1,ann@example.com,,u1,,lead,GB,2025-03-01T08:00:00Z,2025-03-01T08:00:00Z,false\n"
                + "C2,bob@example.com,+44 7700 900456,,L9,subscriber,GB,2025-03-02T08:00:00Z,2025-03-02T08:00:00Z,false\n")
    landing.put("crm", "2025-03-10", "contacts_0310.csv", CONTACT_HEADER
                + "C1,ann@example.com,,u1,,customer,GB,2025-03-01T08:00:00Z,2025-03-08T12:30:00Z,false\n"
                + "C2,bob@example.com,+44 7700 900456,,L9,subscriber,GB,2025-03-02T08:00:00Z,2025-03-02T08:00:00Z,false\n")
    q = run()
    contacts = q("select contact_id, lifecycle_stage, email_hash, phone_hash, loyalty_id from staging.contacts order by 1")
    assert contacts.rows() == [
        ("C1", "customer", h("ann@example.com"), None, None),
        ("C2", "subscriber", h("bob@example.com"), h("+447700900456"), "L9"),
    ]
    lifecycle = q("select contact_id, activity, touchpoint, occurred_at from staging.events order by contact_id, occurred_at, activity")
    assert lifecycle.rows() == [
        ("C1", "created_contact", "lead", dt.datetime(2025, 3, 1, 8)),
        ("C1", "entered_lifecycle_stage", "lead", dt.datetime(2025, 3, 1, 8)),
        ("C1", "entered_lifecycle_stage", "customer", dt.datetime(2025, 3, 8, 12, 30)),
        ("C2", "created_contact", "subscriber", dt.datetime(2025, 3, 2, 8)),
        ("C2", "entered_lifecycle_stage", "subscriber", dt.datetime(2025, 3, 2, 8)),
    ]
    change = q("select attributes from staging.events where event_key like 'crm:contact:C1:lifecycle:customer%'").item()
    assert json.loads(change) == {"lifecycle_stage": "customer", "previous_lifecycle_stage": "lead"}
    # C2's unchanged row in the second snapshot is a duplicate of the first; nothing is lost
    assert q("select _source_file, _source_row from staging.duplicate_rows").rows() == [("crm/2025-03-10/contacts_0310.csv", 2)]
    assert q("select bool_and(is_balanced), sum(rows_read) from staging.load_audit").rows() == [(True, 4)]


TXN_HEADER = "transaction_id,line_number,store_id,occurred_at,loyalty_id,receipt_email,receipt_phone,sku,quantity,unit_price,currency,transaction_type\n"


def test_store_sale_return_and_local_times_across_dst(landing, run):
    landing.put("store", "2025-03-01", "stores.csv", "store_id,name,region,timezone\nS1,London,UK,Europe/London\nS2,NYC,US,America/New_York\n")
    landing.put("store", "2025-03-31", "transactions_0331.csv", TXN_HEADER
                # 01:30 on 30 March 2025 does not exist in London (clocks jump 01:00 -> 02:00): read with the offset before, +00:00
                + "T1,1,S1,2025-03-30 01:30:00,L1,,,SKU1,2,10.00,GBP,sale\n"
                + "T1,2,S1,2025-03-30 01:30:00,L1,,,SKU2,1,5.50,GBP,sale\n"
                # a normal summer time in London: 14:00 BST = 13:00 UTC; returned with a positive quantity in the export
                + "R1,1,S1,2025-04-02 14:00:00,L1,,,SKU1,1,10.00,GBP,return\n"
                # New York, before its change on 9 March: 09:00 EST = 14:00 UTC
                + "T2,1,S2,2025-03-08 09:00:00,,Ann@Example.com,,SKU3,1,20.00,USD,sale\n")
    landing.put("store", "2025-10-27", "transactions_1027.csv", TXN_HEADER
                # 01:30 on 26 October 2025 happens twice in London: the first reading (BST, +01:00) is used
                + "T3,1,S1,2025-10-26 01:30:00,L1,,,SKU1,1,10.00,GBP,sale\n")
    q = run()
    events = q("select event_key, activity, occurred_at, revenue, loyalty_id, email_hash, touchpoint from staging.events order by occurred_at")
    assert events.rows() == [
        ("store:S2:T2:sale", "completed_order", dt.datetime(2025, 3, 8, 14), 20.0, None, h("ann@example.com"), "S2"),
        ("store:S1:T1:sale", "completed_order", dt.datetime(2025, 3, 30, 1, 30), 25.5, "L1", None, "S1"),
        ("store:S1:R1:return", "returned_order", dt.datetime(2025, 4, 2, 13), -10.0, "L1", None, "S1"),
        ("store:S1:T3:sale", "completed_order", dt.datetime(2025, 10, 26, 0, 30), 10.0, "L1", None, "S1"),
    ]


def test_receipt_revenue_is_added_exactly(landing, run):
    # as doubles 0.1 + 0.2 = 0.30000000000000004, and 3 x 0.1 = 0.30000000000000004: added as
    # decimals the lines give exactly 0.3 and 0.6, whatever order they are added in
    landing.put("store", "2025-03-01", "stores.csv", "store_id,name,region,timezone\nS1,London,UK,Europe/London\n")
    landing.put("store", "2025-03-02", "transactions_0302.csv", TXN_HEADER
                + "T1,1,S1,2025-03-02 10:00:00,L1,,,SKU1,1,0.10,GBP,sale\n"
                + "T1,2,S1,2025-03-02 10:00:00,L1,,,SKU2,1,0.20,GBP,sale\n"
                + "T2,1,S1,2025-03-02 11:00:00,L1,,,SKU1,3,0.10,GBP,sale\n"
                + "T2,2,S1,2025-03-02 11:00:00,L1,,,SKU2,1.5,0.20,GBP,sale\n")
    q = run()
    assert q("select event_key, revenue from staging.events order by event_key").rows() == [
        ("store:S1:T1:sale", 0.3), ("store:S1:T2:sale", 0.6)]
    assert q("select attributes->>'quantity' from staging.events order by event_key").to_series().to_list() == ["2.0", "4.5"]


def test_uci_online_retail_slice_loads_through_the_mapping(landing, run):
    folder = landing.root / "store" / "2011-12-10"
    folder.mkdir(parents=True)
    shutil.copy(TEST_DATA / "uci" / "online_retail_slice.csv", folder / "online_retail_slice.csv")
    q = run()
    events = q("select event_key, activity, occurred_at, revenue, loyalty_id from staging.events order by occurred_at")
    # 553156: 2.10 + 5.95 + 1.65 + 0.85 + 3 x 4.95 + 24 x 0.12 = 28.28, at 14:58 BST = 13:58 UTC
    # C543475 (a cancellation): -1.95 - 4.65 = -6.60, at 15:15 GMT; 573174 has no CustomerID: 0.83 + 2 x 0.21 = 1.25
    assert events.rows() == [
        ("store:uci_online_store:C543475:return", "returned_order", dt.datetime(2011, 2, 8, 15, 15), -6.6, "14415"),
        ("store:uci_online_store:553156:sale", "completed_order", dt.datetime(2011, 5, 13, 13, 58), 28.28, "17841"),
        ("store:uci_online_store:573174:sale", "completed_order", dt.datetime(2011, 10, 28, 9, 25), 1.25, None),
    ]
    # 547606 is a stock adjustment (negative quantity, price 0, not a cancellation): quarantined with its reason
    rejected = q("select _source_row, field, reason from quarantine.rejected_rows")
    assert rejected.rows()[0][:2] == (3, "quantity")
    assert "negative quantity on a sale line" in rejected.rows()[0][2]
    assert q("select rows_read, rows_staged, rows_quarantined, is_balanced from staging.load_audit").rows() == [(11, 10, 1, True)]


def test_snowplow_reference_events_load_with_repeated_event_ids_removed(landing, run):
    folder = landing.root / "web" / "2021-03-12"
    folder.mkdir(parents=True)
    shutil.copy(TEST_DATA / "snowplow" / "snowplow_web_events.csv", folder / "snowplow_web_events.csv")
    q = run()
    # 160 rows; event ids repeated: three ids appear twice, so 157 distinct events
    assert q("select count(*), count(distinct event_key) from staging.events").rows() == [(157, 157)]
    assert q("select count(*) from staging.duplicate_rows").item() == 3
    assert q("select rows_read, rows_staged, rows_quarantined, rows_duplicate from staging.load_audit").rows() == [(160, 157, 0, 3)]
    # the copy kept for each repeated id is the one the collector received first (row 1 at 21:27:32.696
    # before row 6 at 21:27:35.176); rows 59/60 and 61/62 tie on collector_tstamp, so the earlier row wins
    removed = q("select _source_row, kept_source_row from staging.duplicate_rows order by 1")
    assert removed.rows() == [(6, 1), (60, 59), (62, 61)]

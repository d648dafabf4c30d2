"""A folder of broken files: every good row loads, the rest is quarantined or reported, nothing is lost."""

from __future__ import annotations

import json

import pytest

ACTIVITY_HEADER = "activity_id,contact_id,activity_type,occurred_at,channel,outcome,score,subject"


@pytest.fixture
def bad_folder(landing):
    day = "2025-03-10"
    good = {"email": "a@example.com", "timestamp": 1741600000, "event": "open", "sg_event_id": "g1", "sg_message_id": "s"}
    # a JSON array cut off in its third element: the first two load, the file is reported at the break
    second = dict(good, sg_event_id="g2")
    landing.put("email", day, "truncated.json", "[\n" + json.dumps(good) + ",\n" + json.dumps(second) + ',\n{"email": "b@exa')
    # JSON lines with one broken line in the middle: that record is quarantined, the others load
    lines = [json.dumps(dict(good, sg_event_id="j1")), '{"email": "c@example.com", "timestamp": 17416', json.dumps(dict(good, sg_event_id="j3"))]
    landing.put("email", day, "broken_line.jsonl", "\n".join(lines) + "\n")
    # bytes that are not UTF-8: the file cannot be read at all
    landing.put("crm", day, "activities_latin1.csv", (ACTIVITY_HEADER + "\nA9,C1,call,2025-03-10T10:00:00Z,phone,ok,,Caf\xe9\n").encode("latin-1"))
    # an impossible date, a missing timestamp, and an unknown extra column that is kept
    landing.put("crm", day, "activities_ok.csv", ACTIVITY_HEADER + ",agent_name\n"
                + "A1,C1,call,2025-03-10T10:00:00Z,phone,answered,,question,Rita\n"
                + "A2,C1,call,2025-02-30T10:00:00Z,phone,answered,,question,Rita\n"
                + "A3,C1,chat,,chat,resolved,,question,Sam\n")
    # a negative price on a sale
    landing.put("store", day, "transactions_bad.csv",
                "transaction_id,line_number,store_id,occurred_at,quantity,unit_price,currency,transaction_type\n"
                "T1,1,S1,2025-03-10 12:00:00,1,9.99,GBP,sale\n"
                "T1,2,S1,2025-03-10 12:00:00,1,-9.99,GBP,sale\n")
    # an empty file, and a CSV missing a required column
    landing.put("store", day, "visits_empty.csv", "")
    landing.put("store", day, "visits_nocols.csv", "store_id,occurred_at\nS1,2025-03-10 10:00:00\n")
    # a file the pipeline does not recognise
    landing.put("web", day, "notes.txt", "hello")
    return landing


def test_bad_files_load_every_good_row_and_account_for_the_rest(bad_folder, run):
    q = run()
    keys = q("select event_key from staging.events order by 1")["event_key"].to_list()
    assert keys == ["crm:activity:A1", "email:g1", "email:g2", "email:j1", "email:j3", "store:S1:T1:sale"]

    rejected = q("select _source_file, _source_row, field, reason from quarantine.rejected_rows order by 1, 2")
    rows = {(r[0].split("/")[-1], r[1], r[2]) for r in rejected.rows()}
    assert rows == {
        ("activities_ok.csv", 2, "occurred_at"),
        ("activities_ok.csv", 3, "occurred_at"),
        ("broken_line.jsonl", 2, "(record)"),
        ("transactions_bad.csv", 2, "unit_price"),
        ("truncated.json", 3, "(record)"),  # the element cut off by the truncation
    }
    reasons = dict(((r[0].split("/")[-1], r[1]), r[3]) for r in rejected.rows())
    assert "2025-02-30" in reasons[("activities_ok.csv", 2)]
    assert "missing" in reasons[("activities_ok.csv", 3)]
    assert "negative" in reasons[("transactions_bad.csv", 2)]

    errors = q("select _source_file, line, error, message from quarantine.load_errors order by 1")
    by_file = {r[0].split("/")[-1]: r for r in errors.rows()}
    assert set(by_file) == {"truncated.json", "activities_latin1.csv", "visits_empty.csv", "visits_nocols.csv", "notes.txt"}
    assert by_file["truncated.json"][1:3] == (4, "truncated_json")
    assert by_file["activities_latin1.csv"][1:3] == (2, "undecodable_bytes")
    assert "line 2, column 46" in by_file["activities_latin1.csv"][3]
    assert by_file["visits_empty.csv"][2] == "empty_file"
    assert by_file["visits_nocols.csv"][2] == "missing_columns" and "visit_id" in by_file["visits_nocols.csv"][3]
    assert by_file["notes.txt"][2] == "unrecognised_file"
    for name, row in by_file.items():
        assert name in row[3], "every message names its file"

    extra = q("select json_extract_string(attributes, '$.agent_name') from staging.events where event_key = 'crm:activity:A1'").item()
    assert extra == "Rita"

    audit = q("select sum(rows_read), sum(rows_staged), sum(rows_quarantined), sum(rows_duplicate), bool_and(is_balanced) from staging.load_audit")
    per_file = dict(
        (r[0].split("/")[-1], r[1:]) for r in q("select _source_file, rows_read, rows_staged, rows_quarantined from staging.load_audit").rows()
    )
    assert per_file == {
        "truncated.json": (3, 2, 1),
        "broken_line.jsonl": (3, 2, 1),
        "activities_latin1.csv": (0, 0, 0),
        "activities_ok.csv": (3, 1, 2),
        "transactions_bad.csv": (2, 1, 1),
        "visits_empty.csv": (0, 0, 0),
        "visits_nocols.csv": (0, 0, 0),
        "notes.txt": (0, 0, 0),
    }
    assert audit.rows() == [(11, 6, 5, 0, True)]

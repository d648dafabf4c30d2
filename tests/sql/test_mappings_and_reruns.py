"""User-defined mappings for other exports, and reruns of a delivery date."""

from __future__ import annotations

import datetime as dt
import io
import json

import polars as pl

from journey_analytics import staging
from journey_analytics.settings import Mapping
from journey_analytics.warehouse import connect

from tests.conftest import load, table


def test_a_parquet_export_maps_onto_crm_activities(landing, tmp_path):
    export = pl.DataFrame({
        "TicketNo": ["K1", "K2"], "Customer": ["C7", "C8"], "Kind": ["TKT", "NPS"],
        "When": ["07/03/2025 14:05", "08/03/2025 09:30"], "Score": [None, "10"], "Mail": ["x@y.com", None],
    })
    buffer = io.BytesIO()
    export.write_parquet(buffer)
    landing.put("crm", "2025-03-08", "helpdesk_export.parquet", buffer.getvalue())
    mapping = Mapping(entity="activities", match="helpdesk_*.parquet", format="parquet", timestamp_format="%d/%m/%Y %H:%M",
                      columns={"activity_id": "TicketNo", "contact_id": "Customer", "occurred_at": "When", "score": "Score",
                               "activity_type": {"column": "Kind", "values": {"TKT": "support_ticket_opened", "NPS": "survey_response"}},
                               "channel": {"constant": "phone"}})
    settings = load(landing.root, tmp_path / "w.duckdb", mappings={"crm": {"helpdesk": mapping}})
    events = table(settings, "select event_key, activity, channel, occurred_at, contact_id, source_format, attributes from staging.events order by 1")
    assert events.select("event_key", "activity", "channel", "occurred_at", "contact_id", "source_format").rows() == [
        ("crm:activity:K1", "opened_support_ticket", "call_centre", dt.datetime(2025, 3, 7, 14, 5), "C7", "mapping:helpdesk"),
        ("crm:activity:K2", "responded_to_survey", "call_centre", dt.datetime(2025, 3, 8, 9, 30), "C8", "mapping:helpdesk"),
    ]
    assert json.loads(events["attributes"][1])["score"] == 10
    assert "x@y.com" not in events["attributes"][0]  # an unmapped column with an address is scrubbed


def test_rerunning_a_delivery_date_replaces_its_rows(landing, tmp_path):
    header = "activity_id,contact_id,activity_type,occurred_at,channel\n"
    landing.put("crm", "2025-03-01", "activities_a.csv", header + "A1,C1,call,2025-03-01T10:00:00Z,phone\n")
    second = landing.put("crm", "2025-03-02", "activities_b.csv", header + "A2,C1,call,2025-03-02T10:00:00Z,phone\nA3,C1,chat,2025-03-02T11:00:00Z,chat\n")
    settings = load(landing.root, tmp_path / "w.duckdb")
    assert table(settings, "select count(*) from staging.events").item() == 3
    # the export of 2 March is re-delivered corrected (one activity withdrawn); rerun only that day
    second.write_text(header + "A2,C1,call,2025-03-02T10:00:00Z,phone\n")
    with connect(settings) as con:
        staging.ingest(con, "crm", [dt.date(2025, 3, 2)], settings)
        staging.build_staging(con, settings)
    assert table(settings, "select event_key from staging.events order by 1")["event_key"].to_list() == ["crm:activity:A1", "crm:activity:A2"]
    assert table(settings, "select sum(rows_read) from staging.load_audit").item() == 2
    # a day whose folder is now empty: its rows go when it is rerun
    second.unlink()
    with connect(settings) as con:
        staging.ingest(con, "crm", [dt.date(2025, 3, 2)], settings)
        staging.build_staging(con, settings)
    assert table(settings, "select event_key from staging.events")["event_key"].to_list() == ["crm:activity:A1"]


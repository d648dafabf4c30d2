"""The checks fail when what they guard breaks (so a green check means something): the conservation
check when a row goes missing, the stream's when an event is lost or doubled, the customer
summary's when a person is missing or counted twice."""

from journey_analytics import staging
from journey_analytics.warehouse import connect

from pipelines.journeys import _stream_checks
from pipelines.marts import _customer_checks
from pipelines.staging import _conservation
from tests.conftest import load

HEADER = "activity_id,contact_id,activity_type,occurred_at,channel\n"


def test_conservation_check_fails_when_a_staged_row_is_lost(landing, tmp_path):
    landing.put("crm", "2025-03-01", "activities_a.csv", HEADER + "A1,C1,call,2025-03-01T10:00:00Z,phone\nA2,C1,chat,2025-03-01T11:00:00Z,chat\n")
    settings = load(landing.root, tmp_path / "w.duckdb")
    with connect(settings) as con:
        results = {r.check_name: r for r in _conservation(con, settings)}
        assert results["conservation_crm"].passed and results["conservation_web"].passed
        con.execute("delete from staging.stg_crm__activities where event_key = 'crm:activity:A2'")
        staging.build_staging_model(con, "load_audit", settings)
        assert staging.unbalanced_files(con)["_source_file"].to_list() == ["crm/2025-03-01/activities_a.csv"]
        results = {r.check_name: r for r in _conservation(con, settings)}
    assert not results["conservation_crm"].passed
    assert results["conservation_crm"].metadata["rows_read"].value == 2
    assert results["conservation_web"].passed


def test_every_event_once_fails_when_an_event_is_lost_or_doubled(landing, tmp_path):
    page = '{"type": "page", "messageId": "%s", "timestamp": "2025-03-01T1%d:00:00Z", "anonymousId": "d1"}'
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join(page % (m, i) for i, m in enumerate(["m1", "m2", "m3"])) + "\n")
    settings = load(landing.root, tmp_path / "w.duckdb", downstream=True)
    with connect(settings) as con:

        def every_event_once():
            return {r.check_name: r for r in _stream_checks(con, settings)}["every_event_once"]

        assert every_event_once().passed
        # m3 doubled in place of m2: as many rows as staged events, but not the same events
        con.execute("update journeys.customer_stream set event_key = 'web:m3' where event_key = 'web:m2'")
        swapped = every_event_once()
        assert not swapped.passed
        assert swapped.metadata["stream_rows"].value == swapped.metadata["staged_events"].value == 3
        con.execute("delete from journeys.customer_stream where event_key = 'web:m3'")
        assert not every_event_once().passed
        # no events at all (a warehouse of contacts only): nothing is lost
        con.execute("delete from journeys.customer_stream")
        con.execute("delete from staging.events")
        assert every_event_once().passed


def test_one_row_per_person_fails_when_a_person_is_missing_or_doubled(landing, tmp_path):
    page = '{"type": "page", "messageId": "%s", "timestamp": "2025-03-01T1%d:00:00Z", "anonymousId": "%s"}'
    # two devices never linked: two persons, d1 with two events
    landing.put("web", "2025-03-01", "w.jsonl", "\n".join([page % ("m1", 0, "d1"), page % ("m2", 1, "d1"), page % ("m3", 2, "d2")]) + "\n")
    settings = load(landing.root, tmp_path / "w.duckdb", downstream=True)
    with connect(settings) as con:

        def violations():
            result = {r.check_name: r for r in _customer_checks(con, settings)}["one_row_per_person"]
            return result.passed, result.metadata["difference"].value

        assert con.execute("select count(*) from marts.customer_summary").fetchall()[0][0] == 2
        assert violations() == (True, 0)
        con.execute("create table marts.summary_copy as select * from marts.customer_summary")
        # a person's row doubled: one row too many, and one person twice
        con.execute("insert into marts.customer_summary select * from marts.summary_copy limit 1")
        assert violations() == (False, 2)
        # a person missing
        con.execute("delete from marts.customer_summary")
        con.execute("insert into marts.customer_summary select * from marts.summary_copy limit 1")
        assert violations() == (False, 1)

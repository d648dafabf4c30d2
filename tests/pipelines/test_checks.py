"""The conservation check fails when a row goes missing (so a green check means something)."""

from journey_analytics import staging
from journey_analytics.warehouse import connect

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

"""The schedule, the landing sensor and the refresh sensor decide what the docs say they do."""

import datetime as dt
import json
import os
import time

import dagster as dg

from pipelines.automation import changed_deliveries, daily_ingest, refresh_after_ingestion, watch_landing_folder
from pipelines.definitions import defs

HEADER = "activity_id,contact_id,activity_type,occurred_at,channel\n"


def _dates(request: dg.RunRequest) -> tuple[str, str]:
    """The first and last delivery date a run request ingests (one partition, or a range)."""
    if request.partition_key:
        return request.partition_key, request.partition_key
    return request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]


def _evaluate(sensor, cursor=None, instance=None):
    context = dg.build_sensor_context(cursor=cursor, instance=instance or dg.DagsterInstance.ephemeral(), definitions=defs)
    result = sensor.evaluate_tick(context)
    return result.run_requests or [], result.skip_message, result.cursor


def test_changed_deliveries_finds_new_changed_and_removed_dates_inside_the_partitions():
    previous = {"2025-03-01": "a", "2025-03-02": "b", "2025-03-03": "c"}
    current = {"2025-03-01": "a", "2025-03-02": "B", "2025-03-04": "d", "2009-12-31": "e"}
    todo, outside = changed_deliveries(previous, current, dt.date(2010, 1, 1), dt.date(2025, 12, 31))
    assert todo == ["2025-03-02", "2025-03-03", "2025-03-04"]
    assert outside == ["2009-12-31"]


def test_the_landing_sensor_requests_each_changed_delivery_date_once(landing, monkeypatch):
    monkeypatch.setenv("JOURNEY_LANDING_DIR", str(landing.root))
    landing.put("crm", "2025-03-01", "activities_a.csv", HEADER + "A1,C1,call,2025-03-01T10:00:00Z,phone\n")
    changed = landing.put("crm", "2025-03-02", "activities_b.csv", HEADER + "A2,C1,call,2025-03-02T10:00:00Z,phone\n")
    landing.put("crm", "2025-03-04", "activities_c.csv", HEADER + "A9,C2,call,2025-03-04T10:00:00Z,phone\n")
    first, _, cursor = _evaluate(watch_landing_folder)
    assert [_dates(r) for r in first] == [("2025-03-01", "2025-03-02"), ("2025-03-04", "2025-03-04")], "one run per range of consecutive dates"
    assert len({r.run_key for r in first}) == 2

    again, skipped, cursor = _evaluate(watch_landing_folder, cursor)
    assert again == [] and "no new or changed" in skipped

    changed.write_text(HEADER + "A2,C1,call,2025-03-02T10:00:00Z,phone\nA3,C1,chat,2025-03-02T11:00:00Z,chat\n")
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    landing.put("web", "2025-03-05", "tracks.jsonl", "")
    later, _, cursor = _evaluate(watch_landing_folder, cursor)
    assert [_dates(r) for r in later] == [("2025-03-02", "2025-03-02"), ("2025-03-05", "2025-03-05")]
    assert later[0].run_key not in {r.run_key for r in first}, "a changed delivery runs again"

    for path in (landing.root / "crm" / "2025-03-01").iterdir():
        path.unlink()
    (landing.root / "crm" / "2025-03-01").rmdir()
    removed, _, _ = _evaluate(watch_landing_folder, cursor)
    assert [_dates(r) for r in removed] == [("2025-03-01", "2025-03-01")], "a removed folder is rerun so its slice empties"
    assert json.loads(cursor).keys() == {"2025-03-01", "2025-03-02", "2025-03-04", "2025-03-05"}


def test_the_daily_schedule_ingests_yesterdays_delivery_date_and_is_on_by_default():
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 3, 5, 3, tzinfo=dt.UTC),
                                        repository_def=defs.get_repository_def())
    request = daily_ingest.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2025-03-04"
    assert daily_ingest.default_status == dg.DefaultScheduleStatus.RUNNING
    assert watch_landing_folder.default_status == refresh_after_ingestion.default_status == dg.DefaultSensorStatus.RUNNING


def test_refresh_waits_for_ingestion_and_runs_once_after_it():
    instance = dg.DagsterInstance.ephemeral()
    _, skipped, _ = _evaluate(refresh_after_ingestion, instance=instance)
    assert skipped == "nothing ingested yet"

    ingested = dg.AssetKey(["deliveries", "crm"])
    instance.report_runless_asset_event(dg.AssetMaterialization(ingested, partition="2025-03-01"))
    requests, _, _ = _evaluate(refresh_after_ingestion, instance=instance)
    assert len(requests) == 1 and requests[0].job_name in (None, "refresh_downstream")

    queued = instance.create_run_for_job(defs.resolve_job_def("ingest_deliveries"), tags={"dagster/partition": "2025-03-02"},
                                         status=dg.DagsterRunStatus.STARTED)
    requests, skipped, _ = _evaluate(refresh_after_ingestion, instance=instance)
    assert requests == [] and "queued or in progress" in skipped
    instance.delete_run(queued.run_id)

    for key in defs.resolve_job_def("refresh_downstream").asset_layer.selected_asset_keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    requests, skipped, _ = _evaluate(refresh_after_ingestion, instance=instance)
    assert requests == [] and "newer than the last ingestion" in skipped

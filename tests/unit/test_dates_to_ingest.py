"""`journey run` ingests only the delivery dates whose landing files changed since the warehouse
loaded them -- and every date when the ingestion settings change."""

from __future__ import annotations

import datetime as dt
import os

from journey_analytics import deliveries
from journey_analytics.ingest.landing import delivery_fingerprints
from journey_analytics.settings import SALT_ENV
from journey_analytics.warehouse import connect

from tests.conftest import settings_for

ROW = '{"type": "page", "messageId": "m%d", "timestamp": "2025-03-0%dT10:00:00Z", "anonymousId": "a1"}\n'


def test_only_new_changed_and_removed_dates_are_ingested_again(landing, tmp_path, monkeypatch):
    for day in (1, 2, 3):
        landing.put("web", f"2025-03-0{day}", "s.jsonl", ROW % (day, day))
    settings = settings_for(landing.root, tmp_path / "w.duckdb")
    d = [dt.date(2025, 3, day) for day in range(1, 6)]
    assert deliveries.dates_to_ingest(settings, delivery_fingerprints(landing.root)) == d[:3]  # no warehouse yet: everything
    with connect(settings):
        pass
    assert deliveries.dates_to_ingest(settings, delivery_fingerprints(landing.root)) == d[:3]  # no fingerprints kept yet
    deliveries.record_ingested(settings, delivery_fingerprints(landing.root))
    assert deliveries.dates_to_ingest(settings, delivery_fingerprints(landing.root)) == []
    landing.put("web", "2025-03-04", "s.jsonl", ROW % (4, 4))  # a new date
    changed = landing.put("web", "2025-03-02", "s.jsonl", ROW % (2, 2) + ROW % (5, 2))  # a changed file
    os.utime(changed, ns=(1, 1))
    (landing.root / "web" / "2025-03-01" / "s.jsonl").unlink()  # a withdrawn delivery: rerun to empty its slice
    (landing.root / "web" / "2025-03-01").rmdir()
    assert deliveries.dates_to_ingest(settings, delivery_fingerprints(landing.root)) == [d[0], d[1], d[3]]
    deliveries.record_ingested(settings, delivery_fingerprints(landing.root))
    assert deliveries.dates_to_ingest(settings, delivery_fingerprints(landing.root)) == []
    # another salt changes every staged hash: every date again
    monkeypatch.setenv(SALT_ENV, "another salt")
    assert deliveries.dates_to_ingest(settings, delivery_fingerprints(landing.root)) == [d[1], d[2], d[3]]

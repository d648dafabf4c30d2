"""Which delivery dates a run must ingest: each date's landing files are fingerprinted
(raw.delivery_fingerprints) once its ingestion succeeded, and a date is ingested again when its
files appear, change or disappear, or when the settings the staged rows depend on change."""

from __future__ import annotations

import datetime as dt
import hashlib

from journey_analytics import incremental
from journey_analytics.settings import Settings
from journey_analytics.warehouse import connect, table_exists

FINGERPRINTS = "raw.delivery_fingerprints"


def ingestion_fingerprint(settings: Settings) -> str:
    """What staged rows depend on besides the files: the sources' settings, mappings and the salt."""
    parts = [settings.model_dump_json(include={"ingest", "web", "email", "crm", "store", "mappings"}),
             hashlib.sha256(settings.hash_salt.encode()).hexdigest()]
    return incremental.fingerprint(parts, [])


def dates_to_ingest(settings: Settings, current: dict[str, str]) -> list[dt.date]:
    """Delivery dates whose files appeared, changed or disappeared since the warehouse last loaded
    them (raw.delivery_fingerprints); every date, landed or loaded, when the ingestion settings
    changed or the warehouse keeps no fingerprints. A removed folder is rerun to empty its slice."""
    every = {dt.date.fromisoformat(d) for d in current}
    if not settings.warehouse_path.exists():
        return sorted(every)
    with connect(settings, read_only=True) as con:
        loaded = set()
        if table_exists(con, "raw.landed_files"):
            loaded = {r[0] for r in con.execute("select distinct _delivery_date from raw.landed_files").fetchall()}
        if not table_exists(con, FINGERPRINTS):
            return sorted(every | loaded)
        rows = con.execute(f"select delivery_date, fingerprint, settings from {FINGERPRINTS}").fetchall()
    if any(row[2] != ingestion_fingerprint(settings) for row in rows):
        return sorted(every | loaded)
    previous = {row[0].isoformat(): row[1] for row in rows}
    changed = {dt.date.fromisoformat(d) for d in set(current) | set(previous) if current.get(d) != previous.get(d)}
    return sorted(changed | (loaded - {dt.date.fromisoformat(d) for d in previous}))


def record_ingested(settings: Settings, current: dict[str, str]) -> None:
    """Remember each delivery date's landing fingerprint once its ingestion succeeded."""
    with connect(settings) as con:
        con.execute(f"create or replace table {FINGERPRINTS} (delivery_date date, fingerprint varchar, settings varchar)")
        print_ = ingestion_fingerprint(settings)
        for day, value in sorted(current.items()):
            con.execute(f"insert into {FINGERPRINTS} values ($d, $f, $s)", {"d": dt.date.fromisoformat(day), "f": value, "s": print_})

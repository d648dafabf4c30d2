"""Identity resolution measured against the generator's ground truth (truth/events_*.csv)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from journey_analytics.warehouse import query, registered


def truth_folder(landing_dir: Path) -> Path | None:
    """The generator writes truth/ beside landing/; None when there is none (real data)."""
    folder = landing_dir.parent / "truth"
    return folder if any(folder.glob("events_*.csv")) else None


def pairwise_scores(con: duckdb.DuckDBPyConnection, truth: Path) -> dict:
    frames = [pl.read_csv(p, schema={"event_key": pl.String, "person_id": pl.String}) for p in sorted(truth.glob("events_*.csv"))]
    with registered(con, pl.concat(frames).unique(), "truth_events"):
        return query(con, "evaluation", "identity_pairs").to_dicts()[0]

"""Identity resolution measured against the generator's ground truth (truth/events_*.csv)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from journey_analytics.warehouse import query


def truth_folder(landing_dir: Path) -> Path | None:
    """The generator writes truth/ beside landing/; None when there is none (real data)."""
    folder = landing_dir.parent / "truth"
    return folder if any(folder.glob("events_*.csv")) else None


def pairwise_scores(con: duckdb.DuckDBPyConnection, truth: Path) -> dict:
    """Pairwise precision and recall of journeys.event_persons against the truth files
    (sql/evaluation/identity_pairs.sql). DuckDB reads the files into a temporary table of distinct
    rows, so none of them is held in Python memory (at 100M events, about 93M rows) and a read-only
    connection can do it."""
    files = [str(p) for p in sorted(truth.glob("events_*.csv"))]
    con.execute(
        "create or replace temp table truth_events as select distinct event_key, person_id "
        "from read_csv($files, header = true, columns = {'event_key': 'varchar', 'person_id': 'varchar'})",
        {"files": files},
    )
    try:
        return query(con, "evaluation", "identity_pairs").to_dicts()[0]
    finally:
        con.execute("drop table if exists temp.main.truth_events")

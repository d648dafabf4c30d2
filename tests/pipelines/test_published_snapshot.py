"""The published snapshot: a DuckDB 1.x reader (as inside a BI tool) holds it open while the
pipeline runs; the run is not blocked, the reader keeps a consistent view, and sees the new data
when it reconnects."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess

import duckdb

from journey_analytics.generator import GeneratorConfig, generate

from tests.pipelines.conftest import journey_run

#: the DuckDB inside BI drivers of the 1.x line (duckdb-engine, Metabase's and Tableau's drivers)
OLD_DUCKDB = "duckdb==1.1.3"

READER = r"""
import json, sys, duckdb
path = sys.argv[1]
def counts(con):
    return {"version": duckdb.__version__,
            "tables": dict(con.execute("select table_name, row_count from published_tables").fetchall()),
            "events": int(con.execute("select sum(events) from marts.customer_summary").fetchall()[0][0]),
            "published_at": str(con.execute("select max(published_at) from published_tables").fetchall()[0][0])}
held = duckdb.connect(path, read_only=False)  # the strongest lock a client can take
print(json.dumps(counts(held)), flush=True)
sys.stdin.readline()  # the run happens now
print(json.dumps(counts(held)), flush=True)
held.close()
fresh = duckdb.connect(path, read_only=True)
print(json.dumps(counts(fresh)), flush=True)
"""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv runs the DuckDB 1.x reader; run the tests with `uv run pytest`"
    return uv


def test_a_reader_holding_the_snapshot_open_never_blocks_a_run(tmp_path):
    generate(GeneratorConfig(customers=80, days=10, seed=11, start=dt.date(2025, 5, 1)), tmp_path / "gen")
    landing = tmp_path / "gen" / "landing"
    later = tmp_path / "later"
    last_day = max(p.name for p in landing.glob("*/*"))
    for folder in landing.glob(f"*/{last_day}"):
        shutil.move(folder, later / folder.parent.name / folder.name)
    home, warehouse = tmp_path / "home", tmp_path / "w.duckdb"
    home.mkdir()
    journey_run(warehouse, home, landing)
    snapshot = tmp_path / "published" / "w.duckdb"
    assert snapshot.exists()

    script = tmp_path / "reader.py"
    script.write_text(READER)
    reader = subprocess.Popen([_uv(), "run", "--no-project", "--quiet", "--with", OLD_DUCKDB, "python", str(script), str(snapshot)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = json.loads(reader.stdout.readline() or reader.stderr.read())
        assert before["version"] == OLD_DUCKDB.split("==")[1], "the snapshot opens in DuckDB 1.x"

        for folder in later.glob("*/*"):
            shutil.move(folder, landing / folder.parent.name / folder.name)
        journey_run(warehouse, home, landing)  # asserts the run succeeded
        assert reader.poll() is None, "the reader still holds the old snapshot"

        out, err = reader.communicate("go\n", timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
    during, after = (json.loads(line) for line in out.splitlines()[:2])
    assert reader.returncode == 0, err
    assert during == before, "a held connection keeps one consistent snapshot"

    with duckdb.connect(str(warehouse), read_only=True) as con:
        events = int(con.execute("select sum(events) from marts.customer_summary").fetchall()[0][0])
        rows = dict(con.execute("select 'marts.funnel_conversion', count(*) from marts.funnel_conversion").fetchall())
    assert after["events"] == events > before["events"], "on reconnect the reader sees the new run's marts"
    assert after["tables"]["marts.funnel_conversion"] == rows["marts.funnel_conversion"]
    assert after["published_at"] > before["published_at"]
    assert not [p for p in snapshot.parent.iterdir() if p.name != snapshot.name], "no temporary files left behind"

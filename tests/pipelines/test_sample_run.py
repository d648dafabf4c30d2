"""`journey run` on the bundled sample, through Dagster: counts, conservation, determinism, privacy."""

from __future__ import annotations

import csv
import re
from pathlib import Path


from journey_analytics.settings import PROJECT_ROOT
from journey_analytics.warehouse import fetch, table_fingerprint

from tests.conftest import load, read_only

SAMPLE = PROJECT_ROOT / "data" / "sample"
LAYERS = ("raw", "staging", "quarantine", "reference", "identity", "journeys", "stages", "marts")
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"


def fingerprints(path: Path) -> dict[str, str]:
    con = read_only(path)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables where list_contains($layers, table_schema) order by 1",
            {"layers": list(LAYERS)},
        ).fetchall()
        # the command's record of the landing files it loaded (paths, sizes, modification times)
        return {t[0]: table_fingerprint(con, t[0]) for t in tables if t[0] != "raw.delivery_fingerprints"}
    finally:
        con.close()


def test_journey_run_prints_per_source_counts_that_add_up(sample_run):
    output = sample_run["output"]
    lines = {line.split()[0]: line.split() for line in output.splitlines() if line.split() and line.split()[0] in ("web", "email", "crm", "store")}
    assert set(lines) == {"web", "email", "crm", "store"}
    for source, cells in lines.items():
        read, staged, quarantined, duplicates = (int(c) for c in cells[2:6])
        assert read == staged + quarantined + duplicates, source
        assert staged > 0 and cells[7] == "yes"
    assert int(lines["web"][5]) > 0, "the generator delivers some Segment messages twice"
    assert int(lines["web"][4]) == 2 and int(lines["store"][4]) == 1, "the sample's deliberately broken records"
    assert "All checks passed." in output


def test_the_conservation_check_holds_for_every_file(sample_run):
    con = read_only(sample_run["first"])
    try:
        audit = fetch(con, "select * from staging.load_audit")
        assert audit.height == sum(1 for p in (SAMPLE / "landing").rglob("*") if p.is_file())
        assert audit["is_balanced"].all()
        assert con.execute("select count(*) - count(distinct event_key) from staging.events").fetchall()[0][0] == 0
    finally:
        con.close()


def test_running_twice_gives_identical_tables(sample_run):
    first, second = fingerprints(sample_run["first"]), fingerprints(sample_run["second"])
    assert len(first) > 50 and all(any(t.startswith(f"{layer}.") for t in first) for layer in ("identity", "journeys", "stages", "marts"))
    assert first == second


def test_loading_in_reverse_order_gives_identical_tables(sample_run):
    reverse = sample_run["tmp"] / "reverse.duckdb"
    load(SAMPLE / "landing", reverse, reverse=True, downstream=True)
    assert fingerprints(reverse) == fingerprints(sample_run["first"])


def test_no_raw_email_or_phone_reaches_the_warehouse(sample_run):
    truth = [row for path in sorted((SAMPLE / "truth").glob("identifiers_*.csv")) for row in csv.DictReader(path.open())]
    phones = {r["identifier"] for r in truth if r["identifier_type"] == "phone"}
    assert phones, "the sample has phone numbers to look for"
    digits = {re.sub(r"\D", "", p)[1:] for p in phones}  # national digits, found in any spelling
    con = read_only(sample_run["first"])
    try:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where list_contains($layers, table_schema) and data_type = 'VARCHAR'",
            {"layers": list(LAYERS)},
        ).fetchall()
        assert len(columns) > 50
        for schema, name, column in columns:
            found = con.execute(
                f'select "{column}" from {schema}.{name} where regexp_matches("{column}", $email)', {"email": EMAIL}
            ).fetchall()
            assert not found, f"{schema}.{name}.{column} holds an email address: {found[0][0][:200]}"
            values = con.execute(f'select distinct regexp_replace("{column}", \'\\D\', \'\', \'g\') from {schema}.{name} where "{column}" is not null').fetchall()
            leaked = [v[0] for v in values if any(d in v[0] for d in digits)]
            assert not leaked, f"{schema}.{name}.{column} holds a phone number"
    finally:
        con.close()


def test_identity_resolution_meets_precision_and_recall_on_the_sample_truth(sample_run):
    from journey_analytics.evaluation import pairwise_scores

    con = read_only(sample_run["first"])
    try:
        # the sample holds shared household devices (one every 40 people) and family emails (one every 80)
        refused = fetch(con, "select refused_rule, count(*) as n from identity.link_decisions where decision = 'refused' group by 1")
        assert refused.height >= 1
        shared = con.execute(
            "select count(*) from identity.identity_map where refused_rule = 'shared_identifier' and identifier_type in ('anonymous_id', 'email')"
        ).fetchall()[0][0]
        assert shared >= 10
        scores = pairwise_scores(con, SAMPLE / "truth")
    finally:
        con.close()
    assert scores["pairwise_precision"] >= 0.995, scores
    assert scores["pairwise_recall"] >= 0.98, scores
    assert "pairwise precision" in sample_run["output"]

"""benchmarks/statements.py: the copies keep joins by key within a copy, and a build in parts
gives the same rows as one statement."""

import importlib.util
from pathlib import Path

import duckdb

from journey_analytics.settings import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location("statements", PROJECT_ROOT / "benchmarks" / "statements.py")
statements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(statements)


def _warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema journeys")
        con.execute("create table journeys.events as select * from (values ('e1', 'p1', 10), ('e2', 'p1', 20), ('e3', 'p2', 5)) as t (event_key, person_id, amount)")
        con.execute("create table journeys.persons as select * from (values ('p1', 'gold'), ('p2', 'silver')) as t (person_id, tier)")


def test_copies_are_disjoint_and_still_join_by_key(tmp_path):
    _warehouse(tmp_path / "w.duckdb")
    rows = statements.copy_tables(tmp_path / "w.duckdb", tmp_path / "lab.duckdb", 3,
                                  {"journeys.events": ["event_key", "person_id"], "journeys.persons": ["person_id"]},
                                  ["create table journeys.extra (x integer)"])
    assert rows == {"journeys.events": 9, "journeys.persons": 6}
    with duckdb.connect(str(tmp_path / "lab.duckdb"), read_only=True) as con:
        assert con.execute("select count(distinct event_key), count(distinct person_id) from journeys.events").fetchall() == [(9, 6)]
        # p1~0 .. p1~2 each hold e1 and e2 of their own copy, with p1's tier: 3 x 3 joined rows
        joined = con.execute("""select events.event_key, events.person_id, persons.tier, events.amount
                                from journeys.events inner join journeys.persons using (person_id)
                                order by events.event_key""").fetchall()
        assert len(joined) == 9
        assert joined[:3] == [("e1~0", "p1~0", "gold", 10), ("e1~1", "p1~1", "gold", 10), ("e1~2", "p1~2", "gold", 10)]
        assert con.execute("select sum(amount) from journeys.events").fetchall() == [(105,)]
        assert con.execute("select count(*) from journeys.extra").fetchall() == [(0,)]


def test_a_build_in_parts_gives_the_rows_of_one_statement(tmp_path):
    _warehouse(tmp_path / "w.duckdb")
    statements.copy_tables(tmp_path / "w.duckdb", tmp_path / "lab.duckdb", 4, {"journeys.events": ["event_key", "person_id"]})
    sql = tmp_path / "totals.sql"
    sql.write_text("select person_id, sum(amount) * $factor as total from journeys.events "
                   "where ($part_from is null or person_id >= $part_from) and ($part_to is null or person_id < $part_to) "
                   "group by person_id")
    spill = tmp_path / "spill"
    spill.mkdir()
    with duckdb.connect(str(tmp_path / "lab.duckdb")) as con:
        whole = statements.time_statement(con, sql, {"factor": 2, "part_from": None, "part_to": None}, spill)
        parts = statements.time_statement(con, sql, {"factor": 2}, spill, parts=3, part_key="journeys.events.person_id")
        doubled = statements.time_statement(con, sql, {"factor": 3, "part_from": None, "part_to": None}, spill)
    assert whole["rows"] == parts["rows"] == 8  # p1 and p2 in each of 4 copies
    assert whole["checksum"] == parts["checksum"]
    assert doubled["checksum"] != whole["checksum"]

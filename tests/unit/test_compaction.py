"""Deleted rows: DuckDB does not vacuum the warehouse at its checkpoints; compact_tables writes a
table again once a quarter of the rows it stores are deleted (docs/performance.md, "Deleted rows")."""

import duckdb

from journey_analytics.incremental import replacing
from journey_analytics.settings import Settings
from journey_analytics.warehouse import COMPACT_DEAD_SHARE, ROW_GROUP_ROWS, compact_tables, connect

STORED = ("select estimated_size from duckdb_tables() "
          "where database_name = current_database() and schema_name = 'main' and table_name = $t")


def _stored(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(STORED, {"t": table}).fetchall()[0][0]


def _half_deleted(con: duckdb.DuckDBPyConnection) -> None:
    # 4 row groups, every other row deleted: the rows left fit in 2
    con.execute("create table t as select range as i from range($n)", {"n": 4 * ROW_GROUP_ROWS})
    con.execute("delete from t where i % 2 = 0")
    con.execute("checkpoint")


def test_the_warehouse_keeps_deleted_rows_at_checkpoints_where_duckdb_alone_vacuums_them(tmp_path):
    settings = Settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill")
    with connect(settings) as con:
        _half_deleted(con)
        assert _stored(con, "t") == 4 * ROW_GROUP_ROWS
        assert con.execute("select count(*) from t").fetchall()[0][0] == 2 * ROW_GROUP_ROWS
    # the same with DuckDB's defaults: its checkpoint merges the half-empty row groups
    with duckdb.connect(str(tmp_path / "plain.duckdb")) as con:
        _half_deleted(con)
        assert _stored(con, "t") == 2 * ROW_GROUP_ROWS


def test_compact_tables_writes_again_only_the_tables_with_enough_deleted_rows(tmp_path):
    assert COMPACT_DEAD_SHARE == 0.25 and ROW_GROUP_ROWS == 122_880  # the figures below are worked from these
    settings = Settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill")
    cases = {
        # table: (rows stored, rows deleted (i < deleted), written again?)
        "over": (491_520, 147_456, True),         # 4 row groups, 30 % deleted: 147,456 >= one row group and >= 0.25 x 491,520
        "under_share": (1_228_800, 245_760, False),  # 10 row groups, 20 %: 245,760 < 0.25 x 1,228,800 = 307,200
        "under_rows": (400_000, 120_000, False),  # 30 %, but 120,000 < one row group
        "exactly": (491_520, 122_880, True),      # 25 % and one row group: both bounds are inclusive
    }
    with connect(settings) as con:
        for table, (stored, deleted, _) in cases.items():
            con.execute(f"create table {table} as select range as i, 'k' || range as key from range($n)", {"n": stored})
            con.execute(f"delete from {table} where i < $d", {"d": deleted})
        before = {table: con.execute(f"select count(*), sum(i), min(key), max(key) from {table}").fetchall()
                  for table in cases}
        compacted = compact_tables(con, [f"main.{table}" for table in cases] + ["main.missing"])
        assert compacted == [f"main.{table}" for table, (_, _, rewritten) in cases.items() if rewritten]
        for table, (stored, deleted, rewritten) in cases.items():
            assert _stored(con, table) == (stored - deleted if rewritten else stored), table
            assert con.execute(f"select count(*), sum(i), min(key), max(key) from {table}").fetchall() == before[table]


def test_a_replacement_that_deletes_enough_rows_compacts_its_table(tmp_path):
    # incremental.replacing is how the models updated in place write (replace_rows, funnel_levels)
    settings = Settings(warehouse_path=tmp_path / "w.duckdb", duckdb_temp_dir=tmp_path / "spill")
    with connect(settings) as con:
        for table in ("big", "small"):
            con.execute(f"create table {table} as select range as i from range($n)", {"n": 4 * ROW_GROUP_ROWS})
        # big: 40 % of its rows deleted, one row inserted -> compacted; small: 10 % -> kept as it is
        with replacing(con, "main.big", "i % 5 < 2"):
            con.execute("insert into big values (-1)")
        with replacing(con, "main.small", "i % 10 = 0"):
            con.execute("insert into small values (-1)")
        live = {table: con.execute(f"select count(*) from {table}").fetchall()[0][0] for table in ("big", "small")}
        assert live == {"big": 294_913, "small": 442_369}  # 491,520 - 196,608 + 1; 491,520 - 49,152 + 1
        assert _stored(con, "big") == live["big"]
        assert _stored(con, "small") == 4 * ROW_GROUP_ROWS + 1

import re

import duckdb

from journey_analytics.settings import Settings
from journey_analytics.warehouse import connection_config

UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _limit_bytes(con: duckdb.DuckDBPyConnection) -> float:
    text = con.execute("select current_setting('memory_limit')").fetchall()[0][0]  # e.g. '11.7 GiB'
    number, unit = re.fullmatch(r"([\d.]+) (\w+)", text).groups()
    return float(number) * UNITS[unit]


def test_default_memory_limit_is_half_of_what_duckdb_sees_of_the_machine(tmp_path):
    # DuckDB's own default is 80 % of the memory it sees; ours is half of that memory, leaving
    # room for one ingestion batch of polars frames beside DuckDB's pool
    duckdbs_default = _limit_bytes(duckdb.connect())
    ours = _limit_bytes(duckdb.connect(config=connection_config(Settings(duckdb_temp_dir=tmp_path / "spill"))))
    assert abs(ours - duckdbs_default * 0.5 / 0.8) <= 0.02 * ours


def test_a_configured_memory_limit_reaches_duckdb(tmp_path):
    con = duckdb.connect(config=connection_config(Settings(duckdb_memory_limit="4GiB", duckdb_temp_dir=tmp_path / "spill")))
    assert _limit_bytes(con) == 4 * 2**30

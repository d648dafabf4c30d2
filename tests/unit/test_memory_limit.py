import re

import duckdb

from journey_analytics.settings import Settings
from journey_analytics.warehouse import connection_config

UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _limit(config: dict | None = None) -> tuple[float, int]:
    """The memory limit DuckDB reports, in bytes, and the unit it reports it in (it shows one
    decimal, e.g. '11.7 GiB', so a reading is exact to about a tenth of that unit)."""
    with duckdb.connect(config=config or {}) as con:
        text = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    number, unit = re.fullmatch(r"([\d.]+) (\w+)", text).groups()
    return float(number) * UNITS[unit], UNITS[unit]


def test_default_memory_limit_is_half_of_what_duckdb_sees_of_the_machine(tmp_path):
    # DuckDB's own default is 80 % of the memory it sees; ours is half of that memory, leaving
    # room for one ingestion batch of polars frames beside DuckDB's pool
    duckdbs_default, unit_a = _limit()
    ours, unit_b = _limit(connection_config(Settings(duckdb_temp_dir=tmp_path / "spill")))
    # both readings are rounded to a tenth of their unit: allow that, on any machine's memory size
    assert abs(ours - duckdbs_default * 0.5 / 0.8) <= 0.15 * max(unit_a, unit_b)


def test_a_configured_memory_limit_reaches_duckdb(tmp_path):
    limit, _ = _limit(connection_config(Settings(duckdb_memory_limit="4GiB", duckdb_temp_dir=tmp_path / "spill")))
    assert limit == 4 * 2**30

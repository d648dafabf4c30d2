"""The warehouse resource holds the DuckDB file open for a whole run, and lets go of it after."""

import dagster as dg
import duckdb

from pipelines.resources import Warehouse


def test_every_step_of_a_run_shares_one_open_warehouse_and_the_file_is_free_after(tmp_path):
    path = tmp_path / "warehouse.duckdb"

    @dg.asset
    def first(duckdb: Warehouse) -> None:
        with duckdb.get_connection() as con:
            # an attached database belongs to the database instance, not to the connection
            con.execute("attach ':memory:' as probe")

    @dg.asset(deps=[first])
    def second(duckdb: Warehouse) -> dg.MaterializeResult:
        with duckdb.get_connection() as con:
            names = sorted(row[0] for row in con.execute("select database_name from duckdb_databases() where not internal").fetchall())
        return dg.MaterializeResult(metadata={"databases": ",".join(names)})

    result = dg.materialize([first, second], resources={"duckdb": Warehouse(database=str(path))})
    assert result.success
    seen = result.asset_materializations_for_node("second")[0].metadata["databases"].value
    assert seen == "probe,warehouse"
    # after the run nothing holds the file: a connection with another configuration opens it
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from duckdb_databases() where database_name = 'probe'").fetchall()[0][0] == 0

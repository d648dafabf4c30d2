"""The analyst docs stay true: the data dictionary matches the marts column for column."""

from __future__ import annotations

from journey_analytics.catalog import entries
from journey_analytics.marts import MART_MODELS
from journey_analytics.warehouse import connect


def test_the_data_dictionary_describes_every_mart_column_with_its_type(generated_warehouse):
    documented = entries()
    assert sorted(documented) == sorted(f"marts.{m}" for m in MART_MODELS)
    with connect(generated_warehouse, read_only=True) as con:
        for qualified, entry in documented.items():
            schema, table = qualified.split(".")
            actual = con.execute(
                "select column_name, data_type from information_schema.columns where table_schema = $s and table_name = $t order by ordinal_position",
                {"s": schema, "t": table},
            ).fetchall()
            assert [(c.name, c.type) for c in entry.columns] == actual, qualified
            assert entry.summary.endswith(".") and entry.summary.count(". ") == 0, f"{qualified}: one sentence"
            assert all(len(c.meaning) > 3 for c in entry.columns), qualified

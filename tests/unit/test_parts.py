"""warehouse.part_bounds and build_in_parts: a model built in ranges of a key, on literal rows."""

import duckdb
import pytest

from journey_analytics.warehouse import build_in_parts, part_bounds


@pytest.fixture
def con():
    con = duckdb.connect()
    # keys a (4 rows), b (1), c (1), d (2): 8 rows
    con.execute("create table t as select * from (values ('a', 1), ('a', 2), ('a', 3), ('a', 4), ('b', 5), ('c', 6), "
                "('d', 7), ('d', 8)) as v(k, x)")
    yield con
    con.close()


def test_the_bounds_split_the_rows_in_about_equal_ranges_of_whole_keys(con):
    # rows before each key: a 0, b 4, c 5, d 6 of 8; in thirds (rows before x 3 // 8) 0, 1, 1, 2
    assert part_bounds(con, "t", "k", 3) == ["a", "b", "d"]
    # in halves (x 2 // 8) 0, 1, 1, 1: a's 4 rows, then b, c and d's 4
    assert part_bounds(con, "t", "k", 2) == ["a", "b"]
    assert part_bounds(con, "t", "k", 1) == ["a"]


def test_a_key_holding_more_than_a_part_makes_fewer_parts(con):
    # in quarters (x 4 // 8) 0, 2, 2, 3: a's 4 rows are two quarters, so three ranges
    assert part_bounds(con, "t", "k", 4) == ["a", "b", "d"]
    # every key a range of its own at most
    assert part_bounds(con, "t", "k", 8) == ["a", "b", "c", "d"]


def test_an_empty_table_has_one_open_range(con):
    con.execute("create table empty (k varchar)")
    assert part_bounds(con, "empty", "k", 3) == [None]


def test_a_model_built_in_parts_holds_every_row_once(con, tmp_path):
    sql = tmp_path / "model.sql"
    sql.write_text("select k, x, (select count(*) from t as inner_t where inner_t.k = t.k) as n from t "
                   "where ($part_from is null or k >= $part_from) and ($part_to is null or k < $part_to)\n")
    assert build_in_parts(con, "built", sql, {}, part_bounds(con, "t", "k", 3)) == 3
    assert con.execute("select k, x, n from built order by x").fetchall() == [
        ("a", 1, 4), ("a", 2, 4), ("a", 3, 4), ("a", 4, 4), ("b", 5, 1), ("c", 6, 1), ("d", 7, 2), ("d", 8, 2)]
    # one part: both bounds null, the same rows
    assert build_in_parts(con, "whole", sql, {}, [None]) == 1
    assert con.execute("select count(*) from (select * from whole except all select * from built)").fetchall()[0][0] == 0
    assert con.execute("select count(*) from whole").fetchall()[0][0] == 8

"""Every model under sql/ stays in the portable subset the same models run in on Spark: one SELECT
per file, values bound as `$name` parameters, none of the DuckDB-only constructs the guide rules
out, and sqlglot turns it into Spark SQL without reporting anything it cannot express."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from journey_analytics.warehouse import SQL_DIR

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))


def portability_problems(sql: str) -> list[str]:
    """What keeps `sql` out of the portable subset; empty when nothing does."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as error:
        return [f"sqlglot cannot read it as DuckDB SQL: {error}"]
    if len(statements) != 1:
        return [f"{len(statements)} statements, not one SELECT"]
    tree = statements[0]
    problems = [] if isinstance(tree, exp.Query) else [f"a {type(tree).__name__} statement, not a SELECT"]
    for node in tree.walk():
        if isinstance(node, (exp.ArrayAgg, exp.GroupConcat)) and node.find(exp.Order):
            problems.append(f"an ordered list aggregate: {node.sql('duckdb')}")
        elif isinstance(node, exp.Pivot):
            problems.append("PIVOT")
        elif isinstance(node, exp.DateDiff):
            problems.append(f"date_diff: {node.sql('duckdb')}")
        elif isinstance(node, exp.Lambda):
            problems.append(f"a lambda: {node.sql('duckdb')}")
    if re.search(r"\blen\s*\(", sql, flags=re.I):
        problems.append("len()")
    bound = {node.name for node in tree.find_all(exp.Placeholder)}
    written = set(re.findall(r"\$(\w+)", sql))
    if bound != written:
        problems.append(f"parameters sqlglot does not see as bound values: {sorted(written - bound)}")
    try:
        sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as error:
        problems.append(f"not expressible in Spark SQL: {error}")
    return problems


def test_there_are_models_to_check():
    assert len(SQL_FILES) >= 50 and all(p.read_text().strip() for p in SQL_FILES)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_the_model_is_portable_to_spark(path):
    assert portability_problems(path.read_text()) == []


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("select list(x order by y) as xs from t", "ordered list aggregate"),
        ("select string_agg(x, ',' order by y) as xs from t", "ordered list aggregate"),
        ("select * from t pivot (sum(b) for a in ('x'))", "PIVOT"),
        ("select date_diff('day', a, b) as days from t", "date_diff"),
        ("select list_transform(l, x -> x + 1) as l2 from t", "lambda"),
        ("select len(l) as n from t", "len()"),
        ("select 1 as a; select 2 as b", "2 statements"),
        ("create table u as select 1 as a", "not a SELECT"),
        # a map alias reads as DuckDB's MAP constructor: the mistake this check first found
        ("select map.a from t as map", "cannot read"),
    ],
)
def test_each_ruled_out_construct_is_caught(sql, problem):
    assert any(problem in found for found in portability_problems(sql)), portability_problems(sql)


def test_a_portable_select_with_bound_values_passes():
    sql = "with w as (select a, lag(b) over (partition by a order by c) as p from t where d = $day) select * from w"
    assert portability_problems(sql) == []

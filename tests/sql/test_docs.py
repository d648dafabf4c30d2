"""The analyst docs stay true: the data dictionary matches the marts column for column, and the
example queries run and answer what they say."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re

import polars as pl

from journey_analytics.catalog import entries
from journey_analytics.marts import MART_MODELS
from journey_analytics.settings import PROJECT_ROOT
from journey_analytics.warehouse import connect, fetch

from tests.conftest import read_only


def _columns(con, schema: str, table: str) -> list[tuple[str, str]]:
    """A table's (column, type) pairs in their order."""
    return con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = $s and table_name = $t order by ordinal_position",
        {"s": schema, "t": table},
    ).fetchall()


def test_the_data_dictionary_describes_every_mart_column_with_its_type(generated_warehouse):
    documented = entries()
    assert sorted(documented) == sorted(f"marts.{m}" for m in MART_MODELS)
    with connect(generated_warehouse, read_only=True) as con:
        for qualified, entry in documented.items():
            schema, table = qualified.split(".")
            assert [(c.name, c.type) for c in entry.columns] == _columns(con, schema, table), qualified
            assert entry.summary.endswith(".") and entry.summary.count(". ") == 0, f"{qualified}: one sentence"
            assert all(len(c.meaning) > 3 for c in entry.columns), qualified


def test_journeys_md_names_every_stream_column_and_where_the_others_are(generated_warehouse):
    text = (PROJECT_ROOT / "docs" / "journeys.md").read_text()
    holds, _, rest = text.partition("It holds ")[2].partition("An event's other fields")
    named = set(re.findall(r"`([a-z_]+\*?)`", holds))
    elsewhere = set(re.findall(r"`([a-z_]+)`", rest.partition("one join away")[0])) - {"staging"}
    with connect(generated_warehouse, read_only=True) as con:
        stream = {name for name, _ in _columns(con, "journeys", "customer_stream")}
        staged = {name for name, _ in _columns(con, "staging", "events")}
    covered = {c for c in stream if any(fnmatch.fnmatch(c, pattern) for pattern in named)}
    assert covered == stream, sorted(stream - covered)
    assert all(any(fnmatch.fnmatch(c, pattern) for c in stream) for pattern in named), named
    assert len(elsewhere) == 12 and elsewhere <= staged and not elsewhere & stream, sorted(elsewhere)


EXAMPLES = PROJECT_ROOT / "docs" / "example-queries.md"


def _examples() -> list[tuple[str, str]]:
    text = EXAMPLES.read_text()
    return [(title, sql) for title, sql in re.findall(r"^## (.+?)\n.*?```sql\n(.*?)```", text, flags=re.M | re.S)]


def test_every_example_query_runs_on_a_generated_warehouse(generated_warehouse):
    examples = _examples()
    assert len(examples) >= 8
    with connect(generated_warehouse, read_only=True) as con:
        for title, sql in examples:
            assert con.execute(sql).fetchall() is not None, title


def test_the_email_click_then_store_purchase_example_agrees_with_a_direct_computation(sample_run):
    title, sql = _examples()[0]
    assert "store within 7 days" in title and "'weekly_digest'" in sql
    con = read_only(sample_run["first"])
    try:
        stream = fetch(con, "select person_id, event_key, activity, channel, campaign_name, occurred_at from journeys.customer_stream")
        campaigns = sorted(stream.filter(pl.col("activity") == "clicked_email")["campaign_name"].drop_nulls().unique().to_list())
        answers = {c: fetch(con, sql.replace("'weekly_digest'", f"'{c}'")) for c in campaigns}
    finally:
        con.close()
    assert len(campaigns) >= 3 and sum(a.height for a in answers.values()) >= 3, "the sample holds such customers"
    for campaign, answer in answers.items():
        _agrees(stream, campaign, answer)


def _agrees(stream: pl.DataFrame, campaign: str, answer: pl.DataFrame) -> None:
    clicks = stream.filter((pl.col("activity") == "clicked_email") & (pl.col("campaign_name") == campaign))
    orders = stream.filter((pl.col("activity") == "completed_order") & (pl.col("channel") == "store"))
    expected = {}
    for click in clicks.iter_rows(named=True):
        for order in orders.filter(pl.col("person_id") == click["person_id"]).iter_rows(named=True):
            if click["occurred_at"] <= order["occurred_at"] <= click["occurred_at"] + dt.timedelta(days=7):
                entry = expected.setdefault(click["person_id"], {"clicks": set(), "orders": set()})
                entry["clicks"].add(click["occurred_at"])
                entry["orders"].add((order["occurred_at"], order["event_key"]))
    assert answer["person_id"].to_list() == sorted(expected)
    for row in answer.iter_rows(named=True):
        entry = expected[row["person_id"]]
        assert row["first_click_at"] == min(entry["clicks"])
        assert row["store_orders"] == len(entry["orders"])
        assert row["first_store_order_at"] == min(o[0] for o in entry["orders"])

"""The customer stream: every event with its person, in order, with sessions and journeys."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from journey_analytics.settings import Settings
from journey_analytics.warehouse import build_model, write_table

MODELS = ("event_persons", "customer_stream")


def params(settings: Settings) -> dict:
    j = settings.journeys
    return {
        "session_gap_seconds": j.session_gap_minutes * 60,
        "max_session_seconds": j.max_session_hours * 3600,
        "journey_gap_seconds": j.journey_gap_days * 86400,
    }


def write_reference_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    j = settings.journeys
    write_table(con, "journeys.source_ranks", pl.DataFrame(
        {"source": list(j.source_rank), "source_rank": list(j.source_rank.values())}, schema={"source": pl.String, "source_rank": pl.Int64}))
    write_table(con, "journeys.purchase_activities",
                pl.DataFrame({"activity": sorted(set(j.purchase_activities))}, schema={"activity": pl.String}))


def data_end(con: duckdb.DuckDBPyConnection, settings: Settings) -> dt.datetime | None:
    """The data's end for recency, churn, censoring and open windows: setting marts.as_of, or the
    last event in the customer stream. Resolved once here and bound as $as_of in every model."""
    if settings.marts.as_of is not None:
        return settings.marts.as_of
    return con.execute("select max(occurred_at) from journeys.customer_stream").fetchall()[0][0]


def build_journey_model(con: duckdb.DuckDBPyConnection, name: str, settings: Settings) -> int:
    write_reference_tables(con, settings)
    return build_model(con, "journeys", name, params(settings))

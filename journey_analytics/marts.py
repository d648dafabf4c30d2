"""The analytic marts: their reference tables from settings, their parameters, and the one step
that is not SQL -- solving the absorbing Markov chain of attribution exactly.

Definitions: docs/funnels.md, docs/churn.md, docs/attribution.md, docs/customers.md.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl

from journey_analytics.journeys import STREAM_READERS, build_stream_consumer, data_end
from journey_analytics.settings import Settings
from journey_analytics.warehouse import build_model, fetch, write_table

#: helper tables (journeys layer) and marts, in build order
JOURNEY_MODELS = ("customer_activity", "touches", "journey_paths", "attribution_transitions", "markov_removal_effects")
MART_MODELS = ("funnel_conversion", "funnel_drop_off", "abandonment", "drop_off_drivers", "churn_points", "churn_by_cohort",
               "churn_touchpoints", "path_variants", "channel_transitions", "attribution", "customer_summary", "retention_cohorts")

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def params(settings: Settings) -> dict:
    m, s = settings.marts, settings.stages
    return {
        "churn_seconds": m.churn_days * 86400,
        "window_seconds": s.window_days * 86400,
        "unit": s.unit,
        "main_model": s.active_models[0],
        "first_share": m.position_first_share,
        "last_share": m.position_last_share,
        "half_life_days": m.time_decay_half_life_days,
        "min_support": m.driver_min_support,
        "period": m.period,
    }


def _strings(name: str, values) -> pl.DataFrame:
    return pl.DataFrame({name: sorted(set(values))}, schema={name: pl.String})


def write_reference_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Settings the mart SQL reads, as tables in the `reference` schema (never pasted into SQL)."""
    m = settings.marts
    write_table(con, "reference.passive_activities", _strings("activity", m.passive_activities))
    write_table(con, "reference.touch_activities", _strings("activity", m.touch_activities))
    write_table(con, "reference.non_touch_channels", _strings("channel", m.non_touch_channels))
    write_table(con, "reference.cart_activities", pl.DataFrame(
        {"kind": ["cart"] * len(m.cart_activities) + ["checkout"] * len(m.checkout_activities),
         "activity": m.cart_activities + m.checkout_activities}, schema={"kind": pl.String, "activity": pl.String}))
    signals = [{"activity": s.activity, "touchpoint": t} for s in m.churn_signals for t in (s.touchpoints or [None])]
    write_table(con, "reference.churn_signals", pl.DataFrame(signals, schema={"activity": pl.String, "touchpoint": pl.String}))
    write_table(con, "reference.calendar", calendar(con, settings))
    write_table(con, "reference.churn_windows", pl.DataFrame(
        {"channel": list(m.churn_days_by_channel), "churn_seconds": [d * 86400 for d in m.churn_days_by_channel.values()]},
        schema={"channel": pl.String, "churn_seconds": pl.Int64}))


def calendar(con: duckdb.DuckDBPyConnection, settings: Settings) -> pl.DataFrame:
    """Every week (from Monday) and month from the stream's first event to the data's end: periods
    in which nothing happened still get their row in the retention cohorts."""
    first = con.execute("select min(occurred_at) from journeys.customer_stream").fetchall()[0][0]
    last = data_end(con, settings)
    schema = {"period": pl.String, "period_start": pl.Date}
    if first is None or last is None:
        return pl.DataFrame(schema=schema)
    start, end = first.date(), last.date()
    weeks = pl.date_range(start - dt.timedelta(days=start.weekday()), end, interval="1w", eager=True)
    months = pl.date_range(start.replace(day=1), end, interval="1mo", eager=True)
    return pl.concat([pl.DataFrame({"period": "week", "period_start": weeks}), pl.DataFrame({"period": "month", "period_start": months})],
                     how="vertical").cast(schema)


def removal_effects(transitions: pl.DataFrame) -> pl.DataFrame:
    """Exact removal effects of every state of one absorbing Markov chain.

    `transitions` holds from_state, to_state, transitions (counts) with the states '(start)',
    '(conversion)' and '(null)'. With Q the transient-to-transient probabilities, N = (I - Q)^-1
    and b the probability of being absorbed in '(conversion)' from each state, the conversion
    probability with state c removed (every move into c goes to '(null)') is
    b[start] - h[start, c] * b[c], where h[start, c] = N[start, c] / N[c, c] is the probability of
    ever reaching c (strong Markov property). One inversion serves every state.
    """
    states = sorted((set(transitions["from_state"]) | set(transitions["to_state"])) - {CONVERSION, NULL})
    states = [START] + [s for s in states if s != START]
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    counts = np.zeros((n, n + 1))  # last column: conversion
    for src, dst, k in transitions.select("from_state", "to_state", "transitions").iter_rows():
        if dst == CONVERSION:
            counts[index[src], n] += k
        elif dst != NULL:
            counts[index[src], index[dst]] += k
    out = np.zeros(n)
    totals = transitions.group_by("from_state").agg(pl.col("transitions").sum())
    for src, k in totals.iter_rows():
        out[index[src]] = k
    with np.errstate(invalid="ignore", divide="ignore"):
        probabilities = np.where(out[:, None] > 0, counts / out[:, None], 0.0)
    q, r = probabilities[:, :n], probabilities[:, n]
    fundamental = np.linalg.inv(np.eye(n) - q)
    absorbed = fundamental @ r
    base = absorbed[0]
    rows = []
    for state, i in index.items():
        if state == START:
            continue
        reach = fundamental[0, i] / fundamental[i, i]
        without = base - reach * absorbed[i]
        effect = 1 - without / base if base > 0 else 0.0
        rows.append({"state": state, "conversion_probability": float(base), "conversion_probability_without": float(max(without, 0.0)),
                     "removal_effect": float(min(max(effect, 0.0), 1.0))})
    return pl.DataFrame(rows, schema={"state": pl.String, "conversion_probability": pl.Float64,
                                      "conversion_probability_without": pl.Float64, "removal_effect": pl.Float64})


def build_markov_removal_effects(con: duckdb.DuckDBPyConnection) -> int:
    transitions = fetch(con, "select dimension, from_state, to_state, transitions from journeys.attribution_transitions")
    frames = [removal_effects(part).select(pl.lit(dimension).alias("dimension"), pl.all())
              for (dimension,), part in transitions.sort("dimension").group_by(["dimension"], maintain_order=True)]
    schema = {"dimension": pl.String, "state": pl.String, "conversion_probability": pl.Float64,
              "conversion_probability_without": pl.Float64, "removal_effect": pl.Float64}
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    write_table(con, "journeys.markov_removal_effects", frame.sort("dimension", "state"))
    return frame.height


def build_mart_model(con: duckdb.DuckDBPyConnection, layer: str, name: str, settings: Settings) -> int | dict:
    """Build <layer>.<name>: its row count, or for a model reading only the stream's changes
    (journeys.STREAM_READERS) what it built again."""
    write_reference_tables(con, settings)
    if (layer, name) == ("journeys", "markov_removal_effects"):
        return build_markov_removal_effects(con)
    values = {**params(settings), "as_of": data_end(con, settings)}
    if f"{layer}.{name}" in STREAM_READERS:
        return build_stream_consumer(con, f"{layer}.{name}", values, settings)
    return build_model(con, layer, name, values)


def build_marts(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int | dict]:
    """Stages, the journeys-layer helpers and every mart, in dependency order (what the Dagster
    assets do one by one); returns the row count of each table (what it built again, for a model
    reading only the stream's changes: journeys.STREAM_READERS)."""
    from journey_analytics import stages  # noqa: PLC0415 - stages imports nothing from here

    counts = {}
    for name in stages.MODELS:
        counts[f"stages.{name}"] = stages.build_stage_model(con, name, settings)
    for name in JOURNEY_MODELS:
        counts[f"journeys.{name}"] = build_mart_model(con, "journeys", name, settings)
    for name in MART_MODELS:
        counts[f"marts.{name}"] = build_mart_model(con, "marts", name, settings)
    return counts

"""Funnel stages: classify stream events into each active stage model's stages, then follow
every unit (journey or person) up the funnel with ClickHouse windowFunnel semantics.

The rules live in settings (stages.models, with presets); they reach SQL as reference tables
(stages.stage_models, stages.stage_rules), never as pasted text.
"""

from __future__ import annotations

import duckdb
import polars as pl

from journey_analytics import incremental
from journey_analytics.journeys import STREAM_READERS, build_stream_consumer, data_end
from journey_analytics.settings import Settings
from journey_analytics.warehouse import SQL_DIR, bind, build_model, create_from_file, write_table

STEPS = SQL_DIR / "stages" / "steps"
MODELS = ("event_stages", "funnel_levels", "funnel_units", "unit_stages", "stage_spells", "unit_stage_times", "unit_progress")


def params(settings: Settings) -> dict:
    s = settings.stages
    return {"unit": s.unit, "allow_skipped": s.allow_skipped, "window_seconds": s.window_days * 86400}


def write_reference_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    s = settings.stages
    models, rules = [], []
    for name in s.active_models:
        model = s.models[name]
        index = {stage: i for i, stage in enumerate(model.stages, start=1)}
        models += [{"stage_model": name, "stage": stage, "stage_index": i, "stage_count": len(model.stages)} for stage, i in index.items()]
        for number, rule in enumerate(model.rules, start=1):
            for activity in rule.activities:
                for channel in rule.channels or [None]:
                    for touchpoint_type in rule.touchpoint_types or [None]:
                        rules.append({
                            "stage_model": name, "rule_number": number, "stage": rule.stage, "stage_index": index[rule.stage],
                            "activity": activity, "channel": channel, "touchpoint_type": touchpoint_type,
                            "min_occurrence": rule.min_occurrence, "max_occurrence": rule.max_occurrence,
                            "min_score": rule.min_score, "max_score": rule.max_score,
                        })
    model_frame = pl.DataFrame(models, schema={"stage_model": pl.String, "stage": pl.String, "stage_index": pl.Int64,
                                               "stage_count": pl.Int64})
    rule_frame = pl.DataFrame(rules, schema={
        "stage_model": pl.String, "rule_number": pl.Int64, "stage": pl.String, "stage_index": pl.Int64, "activity": pl.String,
        "channel": pl.String, "touchpoint_type": pl.String, "min_occurrence": pl.Int64, "max_occurrence": pl.Int64,
        "min_score": pl.Float64, "max_score": pl.Float64})
    write_table(con, "stages.stage_models", model_frame)
    write_table(con, "stages.stage_rules", rule_frame)


def _step_sql(name: str) -> str:
    return (STEPS / f"{name}.sql").read_text()


def build_funnel_levels(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """stages.funnel_levels: every (unit, level) completion of a chain, in the configured order mode.

    Ordered chains are followed level by level up the longest model (one set-based step each),
    and an incremental run follows again only the chains the stream's changes can reach
    (steps/funnel_scope.sql); strict and any-order chains are found in one statement, whole.
    """
    mode = settings.stages.order_mode
    deepest = max(len(settings.stages.models[m].stages) for m in settings.stages.active_models)

    def write(con: duckdb.DuckDBPyConnection, values: dict, where: str | None, also: tuple[str, ...], bound: dict) -> int:
        if mode != "ordered":
            create_from_file(con, "stages.funnel_levels", STEPS / f"{'funnel_strict' if mode == 'strict' else 'funnel_any_order'}.sql", values)
            return con.execute("select count(*) from stages.funnel_levels").fetchall()[0][0]
        first, step = _step_sql("funnel_first_level"), _step_sql("funnel_next_level")

        def follow(verb: str) -> int:
            written = con.execute(f"{verb}\n{first}", bind(first, values)).fetchall()[0][0]
            for level in range(2, deepest + 1):
                written += con.execute(f"insert into stages.funnel_levels\n{step}", bind(step, {**values, "level": level})).fetchall()[0][0]
            return written

        if where is None:
            return follow("create or replace table stages.funnel_levels as")
        # the replaced chains go, and the new ones are followed up, in one transaction
        with incremental.replacing(con, "stages.funnel_levels", where, also, bound):
            return follow("insert into stages.funnel_levels")

    return build_stream_consumer(con, "stages.funnel_levels", params(settings), settings, write=write, can_update=mode == "ordered")


def build_stage_model(con: duckdb.DuckDBPyConnection, name: str, settings: Settings) -> int | dict:
    """Build stages.<name>: its row count, or for a model reading only the stream's changes
    (journeys.STREAM_READERS) what it built again."""
    write_reference_tables(con, settings)
    if name == "funnel_levels":
        return build_funnel_levels(con, settings)
    values = {**params(settings), "as_of": data_end(con, settings)}
    if f"stages.{name}" in STREAM_READERS:
        return build_stream_consumer(con, f"stages.{name}", values, settings)
    return build_model(con, "stages", name, values)

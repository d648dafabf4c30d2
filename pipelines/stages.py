"""Stages layer: stage classification, funnel chains, stage spells and progress per unit."""

import dagster as dg

from journey_analytics.stages import MODELS, build_stage_model

from pipelines.factory import sql_model_assets

REFERENCE = {
    "stages.stage_rules": [],  # written from settings by each asset
    "journeys.stream_scope": [],  # a work table of the model's own build (incremental runs)
    "stages.stage_models": [],
    "journeys.purchase_activities": [dg.AssetKey(["journeys", "customer_stream"])],  # written with the stream
}

PROGRESS = dg.AssetKey(["stages", "unit_progress"])


def _progress_checks(con, settings):
    repeated = con.execute(
        "select count(*) from (select unit_type, unit_id, stage_model from stages.unit_progress group by all having count(*) > 1) as r"
    ).fetchall()[0][0]
    yield dg.AssetCheckResult(check_name="each_unit_once_per_stage_model", passed=repeated == 0, metadata={"repeats": int(repeated)})


DESCRIPTIONS = {
    "funnel_levels": "Every funnel chain step: a journey (or person) reaching stage n of a stage model, with when and the chain's start.",
}

stage_assets = sql_model_assets(
    "stages", MODELS, build=lambda con, table, settings: build_stage_model(con, table, settings), aliases=REFERENCE,
    descriptions=DESCRIPTIONS,
    # built in steps (sql/stages/steps/funnel_*.sql): the stage events, and the stream its incremental scope reads
    extra_deps={"funnel_levels": [dg.AssetKey(["stages", "event_stages"]), dg.AssetKey(["journeys", "customer_stream"])]},
    checks={"unit_progress": ([dg.AssetCheckSpec("each_unit_once_per_stage_model", asset=PROGRESS,
                                                 description="Each journey and person has one progress row per stage model.")],
                              _progress_checks)},
)

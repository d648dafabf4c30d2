"""Stages layer and the first mart: stage classification, funnel chains and funnel conversion."""

import dagster as dg

from journey_analytics.stages import MODELS, build_stage_model
from journey_analytics.warehouse import build_model

from pipelines.factory import sql_model_assets

CONVERSION = dg.AssetKey(["marts", "funnel_conversion"])
REFERENCE = {
    "stages.stage_rules": [],  # written from settings by each asset
    "stages.stage_models": [],
    "journeys.purchase_activities": [dg.AssetKey(["journeys", "customer_stream"])],  # written with the stream
}


def _conversion_checks(con, settings):
    rising = con.execute(
        """
        select count(*) from marts.funnel_conversion as a
        join marts.funnel_conversion as b
          on a.stage_model = b.stage_model and a.breakdown = b.breakdown and a.breakdown_value = b.breakdown_value
         and b.stage_index = a.stage_index + 1
        where b.entered > a.entered
        """
    ).fetchall()[0][0]
    yield dg.AssetCheckResult(check_name="counts_never_rise_down_the_stages", passed=rising == 0, metadata={"violations": int(rising)})
    outside = con.execute(
        "select count(*) from marts.funnel_conversion where conversion_from_top not between 0 and 1 or conversion_to_next not between 0 and 1"
    ).fetchall()[0][0]
    yield dg.AssetCheckResult(check_name="rates_between_0_and_1", passed=outside == 0, metadata={"violations": int(outside)})
    repeated = con.execute(
        "select count(*) from (select stage_model, unit_id, stage_index, count(*) as n from stages.unit_stages group by all) as u where n > 1"
    ).fetchall()[0][0]
    yield dg.AssetCheckResult(check_name="each_unit_counted_once_per_stage", passed=repeated == 0, metadata={"repeats": int(repeated)})


CHECKS = {
    "funnel_conversion": (
        [dg.AssetCheckSpec("counts_never_rise_down_the_stages", asset=CONVERSION, description="No stage has more entrants than the one before it."),
         dg.AssetCheckSpec("rates_between_0_and_1", asset=CONVERSION, description="Every conversion rate lies in [0, 1]."),
         dg.AssetCheckSpec("each_unit_counted_once_per_stage", asset=CONVERSION, description="Each journey (or person) counts once per stage and stage model.")],
        _conversion_checks,
    ),
}

DESCRIPTIONS = {
    "funnel_levels": "Every funnel chain step: a journey (or person) reaching stage n of a stage model, with when and the chain's start.",
}

stage_assets = sql_model_assets(
    "stages", MODELS, build=lambda con, table, settings: build_stage_model(con, table, settings), aliases=REFERENCE,
    descriptions=DESCRIPTIONS,
    extra_deps={"funnel_levels": [dg.AssetKey(["stages", "event_stages"])]},
)
mart_assets = sql_model_assets(
    "marts", ("funnel_conversion",), build=lambda con, table, settings: build_model(con, "marts", table), aliases=REFERENCE,
    checks=CHECKS,
)

"""Marts layer (and the journeys-layer helpers it reads): conversion, drop-off, churn, paths,
attribution, customers, retention -- each with the Dagster checks its definition promises."""

import dagster as dg

from journey_analytics.marts import JOURNEY_MODELS, MART_MODELS, build_mart_model

from pipelines.factory import sql_model_assets

REFERENCE = {
    "reference.passive_activities": [],  # written from settings by each asset
    "reference.touch_activities": [],
    "reference.non_touch_channels": [],
    "reference.cart_activities": [],
    "reference.churn_signals": [],
    "reference.churn_windows": [],
    "reference.calendar": [],
    "stages.stage_rules": [],
    "stages.stage_models": [],
    "journeys.purchase_activities": [dg.AssetKey(["journeys", "customer_stream"])],
    "journeys.stream_scope": [],  # a work table of customer_activity's own build (incremental runs)
}


def _key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", table])


def _count(con, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])


def _result(name: str, violations: int, label: str = "violations") -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=name, passed=violations == 0, metadata={label: violations})


def _conversion_checks(con, settings):
    yield _result("counts_never_rise_down_the_stages", _count(con, """
        select count(*) from marts.funnel_conversion as a
        join marts.funnel_conversion as b
          on a.stage_model = b.stage_model and a.breakdown = b.breakdown and a.breakdown_value = b.breakdown_value
         and b.stage_index = a.stage_index + 1
        where b.entered > a.entered"""))
    yield _result("rates_between_0_and_1", _count(con, """
        select count(*) from marts.funnel_conversion
        where conversion_from_top not between 0 and 1 or conversion_to_next not between 0 and 1"""))
    yield _result("each_unit_counted_once_per_stage", _count(con, """
        select count(*) from (select stage_model, unit_id, stage_index from stages.unit_stages group by all having count(*) > 1) as u"""),
        "repeats")


def _drop_off_checks(con, settings):
    yield _result("each_unit_once_per_stage_model", _count(con, """
        select count(*) from (select stage_model, unit_id from marts.funnel_drop_off group by all having count(*) > 1) as r"""), "repeats")


def _abandonment_checks(con, settings):
    yield _result("rates_between_0_and_1", _count(con, "select count(*) from marts.abandonment where abandonment_rate not between 0 and 1"))


def _churn_checks(con, settings):
    yield _result("one_final_state_per_customer", _count(con, """
        select count(*) from (
            select person_id, count(case when outcome in ('churned', 'censored') then 1 end) as finals
            from marts.churn_points group by person_id) as f
        where finals <> 1"""), "customers_without_exactly_one")
    yield _result("churned_is_never_censored", _count(con, """
        select count(*) from marts.churn_points
        where (outcome = 'censored') = (churned_at is not null)"""))


def _cohort_checks(con, settings):
    yield _result("rates_between_0_and_1", _count(con, "select count(*) from marts.churn_by_cohort where churn_rate not between 0 and 1"))
    yield _result("cohorts_add_up", _count(con, """
        select count(*) from (select sum(customers) as s from marts.churn_by_cohort where level = 'cohort') as c
        cross join (select customers from marts.churn_by_cohort where level = 'all') as a
        where c.s <> a.customers"""), "mismatches")


def _attribution_checks(con, settings):
    yield _result("credits_sum_to_conversions", _count(con, """
        select count(*) from (
            select model, dimension, sum(conversions) as credited
            from marts.attribution group by model, dimension) as m
        cross join (select count(distinct journey_id) as conversions from journeys.touches where converted) as t
        where abs(m.credited - t.conversions) > 1e-6 * greatest(t.conversions, 1)"""), "models_off")


def _customer_checks(con, settings):
    # the stream's persons are its first events (each person's stream is numbered 1..n, its own
    # check): a filter instead of a distinct count of every event's person id (10M events: 0.26-0.34
    # -> 0.01-0.02 s)
    yield _result("one_row_per_person", _count(con, """
        select abs((select count(*) from marts.customer_summary)
                   - (select count(*) from journeys.customer_stream where sequence_number = 1))
             + (select count(*) - count(distinct person_id) from marts.customer_summary)"""), "difference")


def _retention_checks(con, settings):
    yield _result("rates_between_0_and_1", _count(con, """
        select count(*) from marts.retention_cohorts where share_active not between 0 and 1 or share_purchasing not between 0 and 1"""))
    yield _result("every_cohort_buys_in_period_0", _count(con, """
        select count(*) from marts.retention_cohorts where period_number = 0 and share_purchasing <> 1"""))


CHECKS = {
    "funnel_conversion": (_conversion_checks, [
        ("counts_never_rise_down_the_stages", "No stage has more entrants than the one before it."),
        ("rates_between_0_and_1", "Every conversion rate lies in [0, 1]."),
        ("each_unit_counted_once_per_stage", "Each journey (or person) counts once per stage and stage model.")]),
    "funnel_drop_off": (_drop_off_checks, [("each_unit_once_per_stage_model", "A unit stops at one stage per stage model.")]),
    "abandonment": (_abandonment_checks, [("rates_between_0_and_1", "Abandonment rates lie in [0, 1].")]),
    "churn_points": (_churn_checks, [
        ("one_final_state_per_customer", "Every customer ends as exactly one of churned or censored."),
        ("churned_is_never_censored", "Churn rows have a churn time, censored rows none.")]),
    "churn_by_cohort": (_cohort_checks, [
        ("rates_between_0_and_1", "Churn rates lie in [0, 1]."),
        ("cohorts_add_up", "The cohorts' customers add up to all customers.")]),
    "attribution": (_attribution_checks, [("credits_sum_to_conversions", "Every model's credits sum to the conversions, by channel and by campaign.")]),
    "customer_summary": (_customer_checks, [("one_row_per_person", "One row for every person in the stream.")]),
    "retention_cohorts": (_retention_checks, [
        ("rates_between_0_and_1", "Retention shares lie in [0, 1]."),
        ("every_cohort_buys_in_period_0", "A cohort is defined by its first purchase: period 0 purchasing share is 1.")]),
}


def _specs(table: str) -> tuple[list[dg.AssetCheckSpec], object]:
    evaluate, listed = CHECKS[table]
    return [dg.AssetCheckSpec(name, asset=_key(table), description=text) for name, text in listed], evaluate


helper_assets = sql_model_assets(
    "journeys", JOURNEY_MODELS, build=lambda con, table, settings: build_mart_model(con, "journeys", table, settings),
    aliases=REFERENCE,
    descriptions={"markov_removal_effects": "Exact removal effects of every channel and campaign in the absorbing Markov chain of "
                                            "journeys.attribution_transitions (solved with one matrix inversion; docs/attribution.md)."},
    extra_deps={"markov_removal_effects": [dg.AssetKey(["journeys", "attribution_transitions"])]},
)
mart_assets = sql_model_assets(
    "marts", MART_MODELS, build=lambda con, table, settings: build_mart_model(con, "marts", table, settings),
    aliases=REFERENCE, checks={table: _specs(table) for table in CHECKS},
)

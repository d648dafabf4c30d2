-- Grain: one row per stage model x stage (not the last) x activity done by at least $min_support
-- of the units at that stage: is the activity over-represented among the units that dropped off?
--
-- Units at the stage: those whose funnel reached it (stages.unit_stages). advanced: reached the
-- next stage within the window; dropped: stopped there and their window has closed
-- (marts.funnel_drop_off, still_in_window false; units still in their window are left out). An
-- activity counts for a unit when the unit (its journey, or the person) did it -- an own event,
-- journeys.customer_activity -- from reaching the stage until reaching the next (advanced) or to
-- the unit's end (dropped). With a = dropped with the activity, b = dropped without, c = advanced
-- with, d = advanced without: odds_ratio = (a d) / (b c), with 0.5 added to every cell when one is
-- zero (Haldane-Anscombe); a 95% interval from the log odds ratio's standard error
-- sqrt(1/a + 1/b + 1/c + 1/d). Above 1: units that did it dropped off more often.
with settled as (
    select
        reached.stage_model,
        reached.unit_id,
        reached.stage,
        reached.stage_index,
        reached.reached_at,
        reached.next_reached_at,
        reached.next_reached_at is not null as advanced
    from stages.unit_stages as reached
    inner join stages.stage_models as models
        on models.stage_model = reached.stage_model and models.stage_index = reached.stage_index
    left join marts.funnel_drop_off as dropped
        on dropped.stage_model = reached.stage_model and dropped.unit_id = reached.unit_id
    where reached.stage_index < models.stage_count
        and (reached.next_reached_at is not null or dropped.still_in_window = false)
),

unit_events as (
    select
        case when $unit = 'person' then person_id else journey_id end as unit_id,
        occurred_at,
        activity
    from journeys.customer_activity
),

done as (
    select distinct
        settled.stage_model,
        settled.stage_index,
        settled.unit_id,
        settled.advanced,
        unit_events.activity
    from settled
    inner join unit_events
        on unit_events.unit_id = settled.unit_id
        and unit_events.occurred_at >= settled.reached_at
        and (settled.next_reached_at is null or unit_events.occurred_at < settled.next_reached_at)
),

stage_totals as (
    select
        stage_model,
        stage,
        stage_index,
        count(case when not (advanced) then 1 end) as dropped_units,
        count(case when advanced then 1 end) as advanced_units
    from settled
    group by stage_model, stage, stage_index
),

activity_counts as (
    select
        stage_model,
        stage_index,
        activity,
        count(case when not (advanced) then 1 end) as a,
        count(case when advanced then 1 end) as c
    from done
    group by stage_model, stage_index, activity
),

cells as (
    select
        stage_totals.stage_model,
        stage_totals.stage,
        stage_totals.stage_index,
        activity_counts.activity,
        stage_totals.dropped_units,
        stage_totals.advanced_units,
        activity_counts.a,
        stage_totals.dropped_units - activity_counts.a as b,
        activity_counts.c,
        stage_totals.advanced_units - activity_counts.c as d
    from activity_counts
    inner join stage_totals on stage_totals.stage_model = activity_counts.stage_model and stage_totals.stage_index = activity_counts.stage_index
    where activity_counts.a + activity_counts.c >= $min_support
),

corrected as (
    select
        cells.*,
        case when a = 0 or b = 0 or c = 0 or d = 0 then 0.5 else 0.0 end as k
    from cells
),

logged as (
    select
        corrected.*,
        ln(((a + k) * (d + k)) / ((b + k) * (c + k))) as log_odds_ratio,
        sqrt(1.0 / (a + k) + 1.0 / (b + k) + 1.0 / (c + k) + 1.0 / (d + k)) as standard_error
    from corrected
),

final as (
    select
        stage_model,
        stage,
        stage_index,
        activity,
        dropped_units,
        advanced_units,
        a as dropped_with_activity,
        c as advanced_with_activity,
        cast(a as double) / nullif(dropped_units, 0) as share_of_dropped,
        cast(c as double) / nullif(advanced_units, 0) as share_of_advanced,
        exp(log_odds_ratio) as odds_ratio,
        exp(log_odds_ratio - 1.96 * standard_error) as odds_ratio_low,
        exp(log_odds_ratio + 1.96 * standard_error) as odds_ratio_high
    from logged
)

select * from final

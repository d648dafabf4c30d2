-- One row per stage model x breakdown x stage: how many funnel units (journeys by default) entered
-- the stage, how many advanced to the next within the conversion window, the conversion to the
-- next stage and from the top, and the median and 90th percentile hours to the next stage (the
-- last stage of a model has no next: its advanced and conversion_to_next are null).
--
-- Breakdowns: all; cohort_week and cohort_month (of the unit's first touch); first_touch_channel;
-- last_channel_before_purchase (the channel of the touch before the unit's first purchase). A unit
-- "entered" a stage when its funnel chain reached it (docs/funnels.md: ordered, window from the
-- chain's first stage, ties in time count as in order, skipped stages do not count by default).
with reached as (
    select
        unit_stage.stage_model,
        unit_stage.stage,
        unit_stage.stage_index,
        unit_stage.reached_at,
        unit_stage.next_reached_at,
        units.cohort_week,
        units.cohort_month,
        units.first_touch_channel,
        units.last_channel_before_purchase
    from stages.unit_stages as unit_stage
    inner join stages.funnel_units as units on units.unit_id = unit_stage.unit_id
),

broken_down as (
    select 'all' as breakdown, 'all' as breakdown_value, reached.* from reached
    union all
    select 'cohort_week' as breakdown, cast(cohort_week as varchar) as breakdown_value, reached.* from reached
    union all
    select 'cohort_month' as breakdown, cast(cohort_month as varchar) as breakdown_value, reached.* from reached
    union all
    select 'first_touch_channel' as breakdown, coalesce(first_touch_channel, 'unknown') as breakdown_value, reached.* from reached
    union all
    select 'last_channel_before_purchase' as breakdown, coalesce(last_channel_before_purchase, 'no_purchase') as breakdown_value, reached.* from reached
),

counted as (
    select
        stage_model,
        breakdown,
        breakdown_value,
        stage,
        stage_index,
        count(*) as entered,
        count(next_reached_at) as advanced,
        percentile_cont(0.5) within group (order by (epoch(next_reached_at) - epoch(reached_at)) / 3600.0) as median_hours_to_next,
        percentile_cont(0.9) within group (order by (epoch(next_reached_at) - epoch(reached_at)) / 3600.0) as p90_hours_to_next
    from broken_down
    group by stage_model, breakdown, breakdown_value, stage, stage_index
),

tops as (
    select stage_model, breakdown, breakdown_value, entered as top_entered
    from counted
    where stage_index = 1
),

final as (
    select
        counted.stage_model,
        counted.breakdown,
        counted.breakdown_value,
        counted.stage_index,
        counted.stage,
        counted.entered,
        case when counted.stage_index < models.stage_count then counted.advanced end as advanced,
        case when counted.stage_index < models.stage_count then cast(counted.advanced as double) / counted.entered end as conversion_to_next,
        cast(counted.entered as double) / tops.top_entered as conversion_from_top,
        counted.median_hours_to_next,
        counted.p90_hours_to_next
    from counted
    inner join tops
        on tops.stage_model = counted.stage_model
        and tops.breakdown = counted.breakdown
        and tops.breakdown_value = counted.breakdown_value
    inner join stages.stage_models as models
        on models.stage_model = counted.stage_model
        and models.stage_index = counted.stage_index
)

select * from final

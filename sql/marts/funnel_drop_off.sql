-- Grain: one row per stage model x funnel unit (a journey, or a person when stages.unit =
-- 'person') whose funnel stopped before the model's last stage: it reached stopped_stage
-- (stages.funnel_levels) and did not reach the next within the conversion window.
--
-- last_*: the unit's last own event (journeys.customer_activity, passive events such as email
-- deliveries excluded), and hours_since_last_touch up to the data's end (setting marts.as_of,
-- default the last event in the stream). window_closes_at: the latest chain at the stopped stage
-- started + the window; still_in_window: that is after the data's end, so the unit may yet
-- advance -- count it as a drop-off only once the window has closed (the drivers and the
-- abandonment rates leave such units out).
with as_of as (
    select cast($as_of as timestamp) as as_of
),

furthest as (
    select stage_model, unit_id, max(level) as level
    from stages.funnel_levels
    group by stage_model, unit_id
),

chains as (
    select levels.stage_model, levels.unit_id, min(levels.reached_at) as reached_at, max(levels.chain_start) as latest_chain_start
    from stages.funnel_levels as levels
    inner join furthest on furthest.stage_model = levels.stage_model and furthest.unit_id = levels.unit_id and furthest.level = levels.level
    group by levels.stage_model, levels.unit_id
),

last_touches as (
    select
        case when $unit = 'person' then person_id else journey_id end as unit_id,
        occurred_at,
        activity,
        channel,
        touchpoint_type,
        touchpoint,
        row_number() over (partition by case when $unit = 'person' then person_id else journey_id end
                           order by sequence_number desc) as pick
    from journeys.customer_activity
),

final as (
    select
        furthest.stage_model,
        furthest.unit_id,
        units.person_id,
        models.stage as stopped_stage,
        furthest.level as stopped_stage_index,
        next_stage.stage as next_stage,
        chains.reached_at,
        last_touches.occurred_at as last_touch_at,
        last_touches.activity as last_activity,
        last_touches.channel as last_channel,
        last_touches.touchpoint_type as last_touchpoint_type,
        last_touches.touchpoint as last_touchpoint,
        (epoch(as_of.as_of) - epoch(last_touches.occurred_at)) / 3600.0 as hours_since_last_touch,
        chains.latest_chain_start + to_seconds($window_seconds) as window_closes_at,
        epoch(chains.latest_chain_start) + $window_seconds > epoch(as_of.as_of) as still_in_window
    from furthest
    cross join as_of
    inner join chains on chains.stage_model = furthest.stage_model and chains.unit_id = furthest.unit_id
    inner join stages.stage_models as models on models.stage_model = furthest.stage_model and models.stage_index = furthest.level
    inner join stages.stage_models as next_stage on next_stage.stage_model = furthest.stage_model and next_stage.stage_index = furthest.level + 1
    inner join stages.funnel_units as units on units.unit_id = furthest.unit_id
    left join last_touches on last_touches.unit_id = furthest.unit_id and last_touches.pick = 1
)

select * from final

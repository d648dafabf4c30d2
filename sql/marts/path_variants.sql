-- Grain: one row per path type x stage model x collapsed x path: the most common journey paths.
--
-- path_type 'channel': the journey's attribution touches (journeys.touches) by channel, stage
-- model '' ; 'stage': the journey's stage events (stages.event_stages) by stage, per stage model.
-- collapsed: consecutive repeats merged into one step ('email > email > store' becomes
-- 'email > store'); both variants are always there, pick one with `where collapsed`. A path of
-- more than 10 steps shows its first 5 and last 5 steps around '...'. journeys: journeys with the
-- path; conversions: of them, those ending in a purchase; conversion_rate; share_of_journeys (of
-- the journeys of that path type and model that have a path); median_steps and median_days
-- (first to last event of the journey); path_rank: 1 for the most common (ties by path).
with journey_outcomes as (
    select
        journey_id,
        max(case when converted then 1 else 0 end) as converted
    from journeys.touches
    group by journey_id
),

journey_lengths as (
    select journey_id, (epoch(max(occurred_at)) - epoch(min(occurred_at))) / 86400.0 as days
    from journeys.customer_stream
    group by journey_id
),

steps as (
    select 'channel' as path_type, '' as stage_model, journey_id, touch_number as position, channel as label
    from journeys.touches
    union all
    select 'stage' as path_type, stage_model, journey_id, sequence_number as position, stage as label
    from stages.event_stages
),

marked as (
    select
        steps.*,
        lag(label) over (partition by path_type, stage_model, journey_id order by position) as previous_label
    from steps
),

variants as (
    select path_type, stage_model, journey_id, position, label, false as collapsed from marked
    union all
    select path_type, stage_model, journey_id, position, label, true as collapsed from marked
    where previous_label is null or previous_label <> label
),

numbered as (
    select
        variants.*,
        row_number() over (partition by path_type, stage_model, collapsed, journey_id order by position) as p,
        count(*) over (partition by path_type, stage_model, collapsed, journey_id) as n
    from variants
),

paths as (
    select
        path_type,
        stage_model,
        collapsed,
        journey_id,
        max(n) as steps,
        concat_ws(
            ' > ',
            max(case when p = 1 then label end),
            max(case when p = 2 then label end),
            max(case when p = 3 then label end),
            max(case when p = 4 then label end),
            max(case when p = 5 then label end),
            max(case when n > 10 and p = 6 then '...' end),
            max(case when (n <= 10 and p = 6) or (n > 10 and n - p = 4) then label end),
            max(case when (n <= 10 and p = 7) or (n > 10 and n - p = 3) then label end),
            max(case when (n <= 10 and p = 8) or (n > 10 and n - p = 2) then label end),
            max(case when (n <= 10 and p = 9) or (n > 10 and n - p = 1) then label end),
            max(case when (n <= 10 and p = 10) or (n > 10 and n - p = 0) then label end)
        ) as path
    from numbered
    group by path_type, stage_model, collapsed, journey_id
),

counted as (
    select
        paths.path_type,
        paths.stage_model,
        paths.collapsed,
        paths.path,
        count(*) as journeys,
        count(case when journey_outcomes.converted = 1 then 1 end) as conversions,
        percentile_cont(0.5) within group (order by paths.steps) as median_steps,
        percentile_cont(0.5) within group (order by journey_lengths.days) as median_days
    from paths
    left join journey_outcomes on journey_outcomes.journey_id = paths.journey_id
    left join journey_lengths on journey_lengths.journey_id = paths.journey_id
    group by paths.path_type, paths.stage_model, paths.collapsed, paths.path
),

final as (
    select
        path_type,
        stage_model,
        collapsed,
        path,
        journeys,
        conversions,
        cast(conversions as double) / journeys as conversion_rate,
        cast(journeys as double) / sum(journeys) over (partition by path_type, stage_model, collapsed) as share_of_journeys,
        median_steps,
        median_days,
        row_number() over (partition by path_type, stage_model, collapsed order by journeys desc, path) as path_rank
    from counted
)

select * from final

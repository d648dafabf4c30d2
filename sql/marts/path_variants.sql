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
-- Each journey's paths are journeys.journey_paths' (kept up to date by journey in incremental runs).
with counted as (
    select
        path_type,
        stage_model,
        collapsed,
        path,
        count(*) as journeys,
        count(case when converted then 1 end) as conversions,
        percentile_cont(0.5) within group (order by steps) as median_steps,
        percentile_cont(0.5) within group (order by days) as median_days
    from journeys.journey_paths
    group by path_type, stage_model, collapsed, path
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

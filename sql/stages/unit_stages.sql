-- One row per stage model x funnel unit x stage the unit reached (stages.funnel_levels): when it
-- first reached it, and when it first reached the next stage (null if it did not, within the window).
with levels as (
    select stage_model, unit_id, level, min(reached_at) as reached_at
    from stages.funnel_levels
    group by stage_model, unit_id, level
),

named as (
    select stage_model, stage, stage_index from stages.stage_models
),

final as (
    select
        levels.stage_model,
        levels.unit_id,
        named.stage,
        levels.level as stage_index,
        levels.reached_at,
        next_level.reached_at as next_reached_at
    from levels
    inner join named on named.stage_model = levels.stage_model and named.stage_index = levels.level
    left join levels as next_level
        on next_level.stage_model = levels.stage_model
        and next_level.unit_id = levels.unit_id
        and next_level.level = levels.level + 1
)

select * from final

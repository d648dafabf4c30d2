-- Every level of the any-order funnel (stages.order_mode = 'any', docs/funnels.md): a unit reaches
-- stage k once events of every stage 1..k (an event of a later stage also counts for the stages
-- before it when skipped stages count) fall inside one window of $window_seconds that opens at one
-- of the unit's stage events; later events of the same person count, as in the ordered funnel. It
-- reaches stage k at the earliest such completion. Every stage event is tried as a window's
-- opening: the first event of any complete window is one of them, so the search is exact.
with stage_events as (
    select
        stage_model,
        person_id,
        case when $unit = 'person' then person_id else journey_id end as unit_id,
        occurred_at,
        sequence_number,
        stage_index
    from stages.event_stages
),

openings as (
    select
        stage_events.stage_model,
        stage_events.unit_id,
        stage_events.person_id,
        stage_events.occurred_at as happened_at,
        stage_events.sequence_number,
        models.stage_index as wanted,
        1 as kind
    from stage_events
    inner join stages.stage_models as models on models.stage_model = stage_events.stage_model
),

occurrences as (
    select
        stage_events.stage_model,
        cast(null as varchar) as unit_id,
        stage_events.person_id,
        stage_events.occurred_at as happened_at,
        stage_events.sequence_number,
        models.stage_index as wanted,
        0 as kind
    from stage_events
    inner join stages.stage_models as models
        on models.stage_model = stage_events.stage_model
        and (models.stage_index = stage_events.stage_index or ($allow_skipped and models.stage_index < stage_events.stage_index))
),

combined as (
    select * from openings
    union all
    select * from occurrences
),

next_occurrence as (
    select
        combined.*,
        min(case when kind = 0 then happened_at end) over (
            partition by stage_model, person_id, wanted
            order by happened_at desc, kind
            rows between unbounded preceding and current row
        ) as next_at
    from combined
),

completion as (
    select
        stage_model,
        unit_id,
        person_id,
        happened_at as chain_start,
        sequence_number,
        wanted as level,
        max(next_at) over (
            partition by stage_model, unit_id, person_id, happened_at, sequence_number
            order by wanted
            rows between unbounded preceding and current row
        ) as reached_at,
        sum(case when next_at is null then 1 else 0 end) over (
            partition by stage_model, unit_id, person_id, happened_at, sequence_number
            order by wanted
            rows between unbounded preceding and current row
        ) as missing
    from next_occurrence
    where kind = 1
),

final as (
    select
        stage_model,
        unit_id,
        person_id,
        level,
        reached_at,
        sequence_number,
        chain_start
    from completion
    where missing = 0
        and epoch(reached_at) - epoch(chain_start) <= $window_seconds
)

select * from final

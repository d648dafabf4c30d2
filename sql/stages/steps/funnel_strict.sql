-- Every level of the strict funnel (stages.order_mode = 'strict', docs/funnels.md): a person's
-- stage events, ordered by time, stage, then stream sequence (a tie counts as in order), form
-- segments in which each event is of the same stage as the one before or the next (or, when
-- skipped stages count, any later stage); an event of any other stage ends the segment. Inside a
-- segment a chain opens at an event of the first stage (or of any stage, when skipped stages count:
-- it then reaches every stage up to its own at once), belongs to that event's unit, and reaches
-- stage k at the segment's first later event of stage k (or later) within $window_seconds of the
-- opening. Of a unit's openings of one stage in one segment the last is taken for extending (only
-- events of that stage lie between them, so it has the most window left) and the first for the
-- time the opening stage was reached.
with ordered as (
    select
        stage_model,
        person_id,
        journey_id,
        occurred_at,
        sequence_number,
        stage_index,
        lag(stage_index) over (partition by stage_model, person_id order by occurred_at, stage_index, sequence_number) as previous_index
    from stages.event_stages
),

segmented as (
    select
        ordered.*,
        sum(
            case
                when previous_index is null then 1
                when stage_index = previous_index or stage_index = previous_index + 1 then 0
                when $allow_skipped and stage_index > previous_index then 0
                else 1
            end
        ) over (
            partition by stage_model, person_id
            order by occurred_at, stage_index, sequence_number
            rows between unbounded preceding and current row
        ) as segment
    from ordered
),

runs as (
    select
        stage_model,
        person_id,
        segment,
        case when $unit = 'person' then person_id else journey_id end as unit_id,
        stage_index,
        min(occurred_at) as first_at,
        max(occurred_at) as last_at
    from segmented
    where stage_index = 1 or $allow_skipped
    group by stage_model, person_id, segment, case when $unit = 'person' then person_id else journey_id end, stage_index
),

opened as (
    select
        runs.stage_model,
        runs.unit_id,
        runs.person_id,
        models.stage_index as level,
        runs.first_at as reached_at,
        runs.first_at as chain_start
    from runs
    inner join stages.stage_models as models
        on models.stage_model = runs.stage_model
        and models.stage_index <= runs.stage_index
),

extended as (
    select
        runs.stage_model,
        runs.unit_id,
        runs.person_id,
        models.stage_index as level,
        min(segmented.occurred_at) as reached_at,
        runs.last_at as chain_start
    from runs
    inner join stages.stage_models as models
        on models.stage_model = runs.stage_model
        and models.stage_index > runs.stage_index
    inner join segmented
        on segmented.stage_model = runs.stage_model
        and segmented.person_id = runs.person_id
        and segmented.segment = runs.segment
        and segmented.stage_index >= models.stage_index
        and segmented.occurred_at >= runs.last_at
        and epoch(segmented.occurred_at) - epoch(runs.last_at) <= $window_seconds
    group by runs.stage_model, runs.unit_id, runs.person_id, models.stage_index, runs.last_at
),

final as (
    select stage_model, unit_id, person_id, level, reached_at, cast(null as bigint) as sequence_number, chain_start from opened
    union all
    select stage_model, unit_id, person_id, level, reached_at, cast(null as bigint) as sequence_number, chain_start from extended
)

select * from final

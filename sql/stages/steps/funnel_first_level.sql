-- Level 1 of the ordered funnel: every event of the first stage (or any stage, when skipped stages
-- count) starts a chain at its own time, in the unit (journey or person) the event belongs to.
select
    stage_model,
    case when $unit = 'person' then person_id else journey_id end as unit_id,
    person_id,
    cast(1 as bigint) as level,
    occurred_at as reached_at,
    sequence_number,
    occurred_at as chain_start
from stages.event_stages
where stage_index = 1 or ($allow_skipped and stage_index > 1)

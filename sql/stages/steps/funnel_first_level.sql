-- Level 1 of the ordered funnel: every event of the first stage (or any stage, when skipped stages
-- count) starts a chain at its own time, in the unit (journey or person) the event belongs to.
-- An incremental run ($all_persons false) starts only the chains of journeys.stream_scope's persons
-- at or after their chain_cut_epoch (steps/funnel_scope.sql).
select
    staged.stage_model,
    case when $unit = 'person' then staged.person_id else staged.journey_id end as unit_id,
    staged.person_id,
    cast(1 as bigint) as level,
    staged.occurred_at as reached_at,
    staged.sequence_number,
    staged.occurred_at as chain_start
from stages.event_stages as staged
left join journeys.stream_scope as scope on scope.person_id = staged.person_id
where (staged.stage_index = 1 or ($allow_skipped and staged.stage_index > 1))
    and (
        $all_persons
        or (scope.person_id is not null and (scope.chain_cut_epoch is null or epoch(staged.occurred_at) >= scope.chain_cut_epoch))
    )

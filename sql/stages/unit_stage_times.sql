-- One row per unit (journey or person) x stage model x stage the unit was ever in (its spells,
-- stages.stage_spells): when it first and last entered the stage, how many times, and the hours
-- spent in it over all its spells (summed in DECIMAL: exact, the same in any order).
select
    unit_type,
    unit_id,
    person_id,
    stage_model,
    stage,
    stage_index,
    min(entered_at) as first_entered_at,
    max(entered_at) as last_entered_at,
    count(*) as times_entered,
    cast(sum(cast(hours_in_stage as decimal(38, 12))) as double) as hours_in_stage
from stages.stage_spells
group by unit_type, unit_id, person_id, stage_model, stage, stage_index

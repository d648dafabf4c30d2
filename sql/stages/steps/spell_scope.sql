-- What an incremental run of stages.stage_spells builds again, per person of journeys.stream_scope
-- and stage model (docs/performance.md, "Incremental runs"). The step before it
-- (journeys/steps/journey_scope.sql, by journey) has moved the person's from_sequence_number
-- to the start of the journey holding its first changed row (changed_from_sequence_number): the
-- journey spells of that journey and every later one are built again whole (a journey's current
-- spell runs to the journey's end).
-- A person's spells are built again from its last spell of the model that starts before the first
-- changed row (person_from_sequence_number; in the model's last build): the rows before that row
-- have not changed, so that spell still starts where it did (the stage event before it has
-- another stage) and every earlier spell keeps its events and its left_at (that spell's
-- entered_at). The spells built again are numbered on from that spell's number
-- (person_from_spell_number), and the first one's is_regression compares it with the spell before
-- (previous_stage_index). A person with no such spell (none before, or built again whole) has
-- all its spells of the model built again: they all start at or after the first changed row.
with kept_spells as (
    -- the person spells of the model's last build that start before the first changed row, the
    -- last of them first, each with the stage of the spell before it
    select
        spells.person_id,
        spells.stage_model,
        spells.spell_number,
        spells.sequence_number,
        lag(spells.stage_index) over (partition by spells.person_id, spells.stage_model order by spells.spell_number)
            as previous_stage_index,
        row_number() over (partition by spells.person_id, spells.stage_model order by spells.spell_number desc) as from_last
    from stages.stage_spells as spells
    inner join journeys.stream_scope as scope on scope.person_id = spells.person_id
    where spells.unit_type = 'person' and spells.sequence_number < scope.changed_from_sequence_number
),

cut_spells as (
    select person_id, stage_model, spell_number, sequence_number, previous_stage_index
    from kept_spells
    where from_last = 1
),

final as (
    select
        scope.person_id,
        scope.from_sequence_number,
        least(scope.read_from_sequence_number, coalesce(cut_spells.sequence_number, scope.changed_from_sequence_number))
            as read_from_sequence_number,
        models.stage_model,
        coalesce(cut_spells.sequence_number, scope.changed_from_sequence_number) as person_from_sequence_number,
        coalesce(cut_spells.spell_number, 1) as person_from_spell_number,
        cut_spells.previous_stage_index
    from journeys.stream_scope as scope
    cross join (select distinct stage_model from stages.stage_models) as models
    left join cut_spells on cut_spells.person_id = scope.person_id and cut_spells.stage_model = models.stage_model
)

select * from final

-- One row per unit (each journey, and each person) x stage model: the furthest stage the unit was
-- ever in (any order), the furthest its funnel chain reached (stages.unit_stages: in order, inside
-- the window; only for the funnel's unit, setting stages.unit), the current stage (its last
-- spell, stages.stage_spells) and since when, how many times it changed stage and how many of
-- those changes went backwards (regressions).
with spell_summary as (
    select
        unit_type,
        unit_id,
        person_id,
        stage_model,
        max(stage_index) as furthest_stage_index,
        count(*) - 1 as stage_changes,
        count(case when is_regression then 1 end) as regressions,
        min(entered_at) as first_stage_at
    from stages.stage_spells
    group by unit_type, unit_id, person_id, stage_model
),

current_spell as (
    select unit_type, unit_id, stage_model, stage as current_stage, stage_index as current_stage_index,
        entered_at as current_stage_since, hours_in_stage as hours_in_current_stage
    from stages.stage_spells
    where is_current
),

funnel as (
    select stage_model, unit_id, max(stage_index) as funnel_stage_index
    from stages.unit_stages
    group by stage_model, unit_id
),

final as (
    select
        spell_summary.unit_type,
        spell_summary.unit_id,
        spell_summary.person_id,
        spell_summary.stage_model,
        furthest.stage as furthest_stage,
        spell_summary.furthest_stage_index,
        funnel_stage.stage as funnel_stage,
        funnel.funnel_stage_index,
        current_spell.current_stage,
        current_spell.current_stage_index,
        current_spell.current_stage_since,
        current_spell.hours_in_current_stage,
        spell_summary.first_stage_at,
        spell_summary.stage_changes,
        spell_summary.regressions
    from spell_summary
    inner join current_spell
        on current_spell.unit_type = spell_summary.unit_type
        and current_spell.unit_id = spell_summary.unit_id
        and current_spell.stage_model = spell_summary.stage_model
    inner join stages.stage_models as furthest
        on furthest.stage_model = spell_summary.stage_model
        and furthest.stage_index = spell_summary.furthest_stage_index
    left join funnel
        on spell_summary.unit_type = $unit
        and funnel.stage_model = spell_summary.stage_model
        and funnel.unit_id = spell_summary.unit_id
    left join stages.stage_models as funnel_stage
        on funnel_stage.stage_model = funnel.stage_model
        and funnel_stage.stage_index = funnel.funnel_stage_index
)

select * from final

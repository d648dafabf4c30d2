-- One row per unit (each journey, and each person) x stage model x stage spell: a run of the
-- unit's consecutive stage events of one stage, in stream order (the person's sequence_number,
-- which follows occurred_at: ordering by it alone sorts one integer, 10M events 5.9-7.1 -> 6.0-6.2 s).
--
-- entered_at: the spell's first event; left_at: the next spell's first event (null for the unit's
-- current spell); hours_in_stage: entered_at to left_at, and for the current spell to the unit's
-- end (a journey's last event; for a person, the data's end: setting marts.as_of, default the
-- last event in the stream). is_regression: the spell's stage comes before the previous spell's
-- (e.g. decision, then consideration again). Unlike the funnel (stages.unit_stages) spells
-- ignore the window and the order of stages: they describe where the unit was, not how far it got.
-- sequence_number: the spell's first event's in the person's stream.
--
-- An incremental run ($all_persons false) builds again, for the persons journeys.stream_scope
-- names (one row per person and stage model, stages/steps/spell_scope.sql), the journey spells from
-- the start of the journey holding the first changed row (from_sequence_number) and the person
-- spells from the last one that starts before it (person_from_sequence_number), numbered on from
-- its number (person_from_spell_number; previous_stage_index: the spell before it). The rows
-- before are kept; every person's current person spell takes the new data end in the same
-- transaction (journeys.STREAM_READERS; docs/performance.md, "Incremental runs").
-- A whole build runs in the stream's ranges of person ids where the stream was built in parts: each
-- scan of persons' rows keeps $part_from <= person_id < $part_to (null: open on that side;
-- journeys.StreamReader.in_parts, docs/performance.md "customer_stream in parts").
with as_of as (
    select cast($as_of as timestamp) as as_of
),

journey_ends as (
    select stream.journey_id as unit_id, max(stream.occurred_at) as unit_end
    from journeys.customer_stream as stream
    left join (select distinct person_id, from_sequence_number from journeys.stream_scope) as scope
        on scope.person_id = stream.person_id
    where ($all_persons or stream.sequence_number >= scope.from_sequence_number)
        and ($part_from is null or stream.person_id >= $part_from)
        and ($part_to is null or stream.person_id < $part_to)
    group by stream.journey_id
),

stage_events as (
    select
        event_stages.*,
        scope.from_sequence_number as journey_from,
        scope.person_from_sequence_number as person_from,
        scope.person_from_spell_number,
        scope.previous_stage_index as seed_stage_index
    from stages.event_stages as event_stages
    left join journeys.stream_scope as scope
        on scope.person_id = event_stages.person_id and scope.stage_model = event_stages.stage_model
    where ($all_persons or event_stages.sequence_number >= scope.read_from_sequence_number)
        and ($part_from is null or event_stages.person_id >= $part_from)
        and ($part_to is null or event_stages.person_id < $part_to)
),

unit_events as (
    select
        'journey' as unit_type, journey_id as unit_id, person_id, stage_model, stage, stage_index, occurred_at, sequence_number,
        1 as first_spell_number, cast(null as bigint) as seed_stage_index
    from stage_events
    where $all_persons or sequence_number >= journey_from
    union all
    select
        'person' as unit_type, person_id as unit_id, person_id, stage_model, stage, stage_index, occurred_at, sequence_number,
        coalesce(person_from_spell_number, 1) as first_spell_number, seed_stage_index
    from stage_events
    where $all_persons or sequence_number >= person_from
),

rows_marked as (
    -- one sort of the unit's events: a spell starts where the stage differs from the event before,
    -- and ends where it differs from the event after; the event after an end is the next spell's
    -- first, so its time is the spell's left_at
    select
        unit_events.*,
        lag(stage_index) over (partition by unit_type, unit_id, stage_model order by sequence_number) as previous_index,
        lead(stage_index) over (partition by unit_type, unit_id, stage_model order by sequence_number) as next_index,
        lead(occurred_at) over (partition by unit_type, unit_id, stage_model order by sequence_number) as next_occurred_at,
        row_number() over (partition by unit_type, unit_id, stage_model order by sequence_number) as position
    from unit_events
),

boundaries as (
    -- a spell's first and last events (one event may be both)
    select
        rows_marked.*,
        previous_index is null or previous_index <> stage_index as is_first,
        next_index is null or next_index <> stage_index as is_last
    from rows_marked
),

paired as (
    -- a second sort, of the first and last events only, pairs each first event with its spell's
    -- last and numbers the spells
    select
        boundaries.*,
        first_spell_number - 1 + count(case when is_first then 1 end) over (
            partition by unit_type, unit_id, stage_model
            order by sequence_number
            rows between unbounded preceding and current row
        ) as spell_number,
        lead(occurred_at) over (partition by unit_type, unit_id, stage_model order by sequence_number) as following_occurred_at,
        lead(next_occurred_at) over (partition by unit_type, unit_id, stage_model order by sequence_number) as following_next_occurred_at,
        lead(position) over (partition by unit_type, unit_id, stage_model order by sequence_number) as following_position
    from boundaries
    where is_first or is_last
),

linked as (
    -- one row per spell, from its first event: a spell of one event ends there, a longer one at
    -- the next boundary (no boundary lies inside a spell)
    select
        unit_type,
        unit_id,
        person_id,
        stage_model,
        spell_number,
        stage,
        stage_index,
        occurred_at as entered_at,
        case when is_last then occurred_at else following_occurred_at end as last_event_at,
        sequence_number,
        case when is_last then 1 else following_position - position + 1 end as stage_events,
        case when is_last then next_occurred_at else following_next_occurred_at end as left_at,
        coalesce(previous_index, seed_stage_index) as previous_stage_index
    from paired
    where is_first
),

final as (
    select
        linked.unit_type,
        linked.unit_id,
        linked.person_id,
        linked.stage_model,
        linked.spell_number,
        linked.sequence_number,
        linked.stage,
        linked.stage_index,
        linked.entered_at,
        linked.left_at,
        linked.last_event_at,
        linked.stage_events,
        linked.left_at is null as is_current,
        coalesce(linked.previous_stage_index > linked.stage_index, false) as is_regression,
        (epoch(coalesce(linked.left_at, case when linked.unit_type = 'person' then as_of.as_of else journey_ends.unit_end end))
            - epoch(linked.entered_at)) / 3600.0 as hours_in_stage
    from linked
    cross join as_of
    left join journey_ends on linked.unit_type = 'journey' and journey_ends.unit_id = linked.unit_id
)

select * from final

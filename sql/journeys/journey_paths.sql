-- Grain: one row per path type x stage model x collapsed x journey: each journey's path, from
-- which marts.path_variants counts the most common ones (docs/customers.md).
--
-- path_type 'channel': the journey's attribution touches (journeys.touches) by channel, stage
-- model '' ; 'stage': the journey's stage events (stages.event_stages) by stage, per stage model
-- (a journey without stage events has no stage path). collapsed: consecutive repeats merged into
-- one step ('email > email > store' becomes 'email > store'); both variants are stored. steps:
-- the path's number of steps; path: the steps joined by ' > ', and for more than 10 steps the
-- first 5 and the last 5 around '...'. converted: the journey ends with a purchase (its touches
-- say so). days: from the journey's first to its last event. sequence_number: the journey's first
-- event's in the person's stream.
--
-- An incremental run ($all_persons false) reads the persons journeys.stream_scope names from
-- read_from_sequence_number on: the first event of the journey holding their first changed row,
-- so it builds again that journey and the later ones, whole (steps/journey_scope.sql;
-- docs/performance.md, "Incremental runs").
-- A whole build runs in the stream's ranges of person ids where the stream was built in parts: each
-- scan of persons' rows keeps $part_from <= person_id < $part_to (null: open on that side;
-- journeys.StreamReader.in_parts, docs/performance.md "customer_stream in parts").
with journeys_read as (
    select
        stream.journey_id,
        stream.person_id,
        min(stream.sequence_number) as sequence_number,
        (epoch(max(stream.occurred_at)) - epoch(min(stream.occurred_at))) / 86400.0 as days
    from journeys.customer_stream as stream
    left join journeys.stream_scope as scope on scope.person_id = stream.person_id
    where ($all_persons or stream.sequence_number >= scope.read_from_sequence_number)
        and ($part_from is null or stream.person_id >= $part_from)
        and ($part_to is null or stream.person_id < $part_to)
    group by stream.journey_id, stream.person_id
),

touches_read as (
    select touches.journey_id, touches.touch_number, touches.channel, touches.converted
    from journeys.touches as touches
    left join journeys.stream_scope as scope on scope.person_id = touches.person_id
    where ($all_persons or touches.sequence_number >= scope.read_from_sequence_number)
        and ($part_from is null or touches.person_id >= $part_from)
        and ($part_to is null or touches.person_id < $part_to)
),

journey_outcomes as (
    select journey_id, max(case when converted then 1 else 0 end) = 1 as converted
    from touches_read
    group by journey_id
),

steps as (
    select 'channel' as path_type, '' as stage_model, journey_id, touch_number as position, channel as label
    from touches_read
    union all
    select 'stage' as path_type, event_stages.stage_model, event_stages.journey_id, event_stages.sequence_number as position,
           event_stages.stage as label
    from stages.event_stages as event_stages
    left join journeys.stream_scope as scope on scope.person_id = event_stages.person_id
    where ($all_persons or event_stages.sequence_number >= scope.read_from_sequence_number)
        and ($part_from is null or event_stages.person_id >= $part_from)
        and ($part_to is null or event_stages.person_id < $part_to)
),

marked as (
    -- one sort gives the full path's numbering and each step's predecessor
    select
        steps.*,
        lag(label) over (partition by path_type, stage_model, journey_id order by position) as previous_label,
        row_number() over (partition by path_type, stage_model, journey_id order by position) as p,
        count(*) over (partition by path_type, stage_model, journey_id) as n
    from steps
),

numbered as (
    -- the collapsed path keeps the steps whose label differs from the one before: a second sort,
    -- of those rows only, numbers them
    select path_type, stage_model, false as collapsed, journey_id, label, p, n from marked
    union all
    select
        path_type,
        stage_model,
        true as collapsed,
        journey_id,
        label,
        row_number() over (partition by path_type, stage_model, journey_id order by position) as p,
        count(*) over (partition by path_type, stage_model, journey_id) as n
    from marked
    where previous_label is null or previous_label <> label
),

paths as (
    select
        path_type,
        stage_model,
        collapsed,
        journey_id,
        max(n) as steps,
        concat_ws(
            ' > ',
            max(case when p = 1 then label end),
            max(case when p = 2 then label end),
            max(case when p = 3 then label end),
            max(case when p = 4 then label end),
            max(case when p = 5 then label end),
            max(case when n > 10 and p = 6 then '...' end),
            max(case when (n <= 10 and p = 6) or (n > 10 and n - p = 4) then label end),
            max(case when (n <= 10 and p = 7) or (n > 10 and n - p = 3) then label end),
            max(case when (n <= 10 and p = 8) or (n > 10 and n - p = 2) then label end),
            max(case when (n <= 10 and p = 9) or (n > 10 and n - p = 1) then label end),
            max(case when (n <= 10 and p = 10) or (n > 10 and n - p = 0) then label end)
        ) as path
    from numbered
    group by path_type, stage_model, collapsed, journey_id
),

final as (
    select
        paths.path_type,
        paths.stage_model,
        paths.collapsed,
        paths.journey_id,
        journeys_read.person_id,
        journeys_read.sequence_number,
        paths.steps,
        paths.path,
        journey_outcomes.converted,
        journeys_read.days
    from paths
    inner join journeys_read on journeys_read.journey_id = paths.journey_id
    left join journey_outcomes on journey_outcomes.journey_id = paths.journey_id
)

select * from final

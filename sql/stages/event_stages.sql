-- One row per stream event x stage model, for the events that belong to a stage of that model.
--
-- The rules of each model (setting stages.models; stages.stage_rules) map an activity -- with,
-- where a rule says so, a channel, a touchpoint type, the person's n-th occurrence of the
-- activity and the event's attributes.score -- to a stage. An event matching rules of several
-- stages belongs to the furthest of them (a repeat order is retention, not purchase).
-- The rules are matched once per distinct profile of the stream's events -- (activity, channel,
-- touchpoint type, occurrence, score) -- and each event takes its profile's stage by a join: the
-- same table as matching every event, without grouping millions of matches by event (10M events:
-- 3.7 -> 1.1 s). The score (the stream's, attributes.score) counts only for activities a rule
-- bounds by score: other activities' profiles do not split on it.
-- An incremental run ($all_persons false) classifies only the rows journeys.stream_scope names: each
-- changed person's rows from its from_sequence_number on (an event's stage depends on its own row
-- only; docs/performance.md, "Incremental runs").
-- A whole build runs in the stream's ranges of person ids where the stream was built in parts: each
-- scan of persons' rows keeps $part_from <= person_id < $part_to (null: open on that side;
-- journeys.StreamReader.in_parts, docs/performance.md "customer_stream in parts").
with score_activities as (
    select distinct activity from stages.stage_rules where min_score is not null or max_score is not null
),

stream as (
    select
        changed.person_id,
        changed.journey_id,
        changed.event_key,
        changed.occurred_at,
        changed.sequence_number,
        changed.activity,
        changed.channel,
        changed.touchpoint_type,
        changed.touchpoint,
        changed.activity_occurrence,
        case when changed.activity in (select activity from score_activities) then changed.score end as score
    from journeys.customer_stream as changed
    left join journeys.stream_scope as scope on scope.person_id = changed.person_id
    where changed.activity in (select activity from stages.stage_rules)
        and ($all_persons or changed.sequence_number >= scope.from_sequence_number)
        and ($part_from is null or changed.person_id >= $part_from)
        and ($part_to is null or changed.person_id < $part_to)
),

profiles as (
    select distinct activity, channel, touchpoint_type, activity_occurrence, score from stream
),

matches as (
    select
        profiles.*,
        rules.stage_model,
        rules.stage,
        rules.stage_index
    from profiles
    inner join stages.stage_rules as rules
        on rules.activity = profiles.activity
        and (rules.channel is null or rules.channel = profiles.channel)
        and (rules.touchpoint_type is null or rules.touchpoint_type = profiles.touchpoint_type)
        and (rules.min_occurrence is null or profiles.activity_occurrence >= rules.min_occurrence)
        and (rules.max_occurrence is null or profiles.activity_occurrence <= rules.max_occurrence)
        and (rules.min_score is null or profiles.score >= rules.min_score)
        and (rules.max_score is null or profiles.score <= rules.max_score)
),

ranked as (
    select
        matches.*,
        row_number() over (
            partition by stage_model, activity, channel, touchpoint_type, activity_occurrence, score order by stage_index desc
        ) as pick
    from matches
),

final as (
    select
        ranked.stage_model,
        ranked.stage,
        ranked.stage_index,
        stream.person_id,
        stream.journey_id,
        stream.event_key,
        stream.occurred_at,
        stream.sequence_number,
        stream.activity,
        stream.channel,
        stream.touchpoint_type,
        stream.touchpoint
    from stream
    inner join ranked
        on ranked.activity = stream.activity
        and ranked.channel is not distinct from stream.channel
        and ranked.touchpoint_type is not distinct from stream.touchpoint_type
        and ranked.activity_occurrence = stream.activity_occurrence
        and ranked.score is not distinct from stream.score
    where ranked.pick = 1
)

select * from final

-- One row per stream event x stage model, for the events that belong to a stage of that model.
--
-- The rules of each model (setting stages.models; stages.stage_rules) map an activity -- with,
-- where a rule says so, a channel, a touchpoint type, the person's n-th occurrence of the
-- activity and the event's attributes.score -- to a stage. An event matching rules of several
-- stages belongs to the furthest of them (a repeat order is retention, not purchase).
with stream as (
    select
        person_id,
        journey_id,
        event_key,
        occurred_at,
        sequence_number,
        activity,
        channel,
        touchpoint_type,
        touchpoint,
        activity_occurrence,
        try_cast(json_extract_string(attributes, '$.score') as double) as score
    from journeys.customer_stream
),

matches as (
    select
        stream.*,
        rules.stage_model,
        rules.stage,
        rules.stage_index
    from stream
    inner join stages.stage_rules as rules
        on rules.activity = stream.activity
        and (rules.channel is null or rules.channel = stream.channel)
        and (rules.touchpoint_type is null or rules.touchpoint_type = stream.touchpoint_type)
        and (rules.min_occurrence is null or stream.activity_occurrence >= rules.min_occurrence)
        and (rules.max_occurrence is null or stream.activity_occurrence <= rules.max_occurrence)
        and (rules.min_score is null or stream.score >= rules.min_score)
        and (rules.max_score is null or stream.score <= rules.max_score)
),

ranked as (
    select
        matches.*,
        row_number() over (partition by stage_model, event_key order by stage_index desc) as pick
    from matches
),

final as (
    select
        stage_model,
        stage,
        stage_index,
        person_id,
        journey_id,
        event_key,
        occurred_at,
        sequence_number,
        activity,
        channel,
        touchpoint_type,
        touchpoint
    from ranked
    where pick = 1
)

select * from final

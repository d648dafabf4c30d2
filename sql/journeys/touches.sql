-- One row per attribution touch of a journey: the journey's events whose activity is a touch
-- (setting marts.touch_activities: landings, email opens and clicks, CRM conversations, store
-- visits, till sales ...) and whose channel is not a continuation (marts.non_touch_channels:
-- 'internal' page views inside the site), up to and including the journey's conversion.
--
-- A journey converts when it ends with a purchase (journeys.purchase_activities; docs/journeys.md);
-- conversion_at and revenue are that purchase's. A journey without any touch gets one touch of
-- channel and campaign '(no touch)' at its first event, so that every journey has a path and every
-- conversion is credited. touch_number counts from 1 in stream order (occurred_at, sequence);
-- hours_before_conversion feeds time-decay attribution (null for journeys that did not convert).
-- next_channel and hours_to_next_touch describe the journey's next touch (null at its last): the
-- edges of marts.channel_transitions. They are computed here, in the same window as touch_number,
-- because a window feeding percentile_cont in the same query spilled about 24 GB within 90 s on
-- 100M events (27M touches) in DuckDB 2.0.0 and 2.0.1, where the same aggregate over a table's
-- rows took 2.7 s and spilled nothing (docs/performance.md).
-- sequence_number is the touch event's place in the person's stream (for '(no touch)', the journey's
-- first event's). An incremental run ($all_persons false) reads the persons journeys.stream_scope
-- names from read_from_sequence_number on: the first event of the journey that holds their first
-- changed row, so it builds again that journey and the later ones, whole
-- (steps/journey_scope.sql; docs/performance.md). The stream is filtered where each part reads it,
-- not once in a CTE of its own: read twice, such a CTE is materialised (1M events: 0.66 -> 0.74 s).
-- A whole build runs in the stream's ranges of person ids where the stream was built in parts: each
-- scan of persons' rows keeps $part_from <= person_id < $part_to (null: open on that side;
-- journeys.StreamReader.in_parts, docs/performance.md "customer_stream in parts").
with journey_ends as (
    select
        stream.journey_id,
        stream.person_id,
        min(stream.occurred_at) as started_at,
        min(stream.sequence_number) as first_sequence,
        max(stream.sequence_number) as last_sequence
    from journeys.customer_stream as stream
    left join journeys.stream_scope as scope on scope.person_id = stream.person_id
    where ($all_persons or stream.sequence_number >= scope.read_from_sequence_number)
        and ($part_from is null or stream.person_id >= $part_from)
        and ($part_to is null or stream.person_id < $part_to)
    group by stream.journey_id, stream.person_id
),

conversions as (
    select
        stream.journey_id,
        stream.occurred_at as conversion_at,
        stream.revenue as conversion_revenue
    from journeys.customer_stream as stream
    inner join journey_ends on journey_ends.journey_id = stream.journey_id and journey_ends.last_sequence = stream.sequence_number
    inner join journeys.purchase_activities as purchases on purchases.activity = stream.activity
    where ($part_from is null or stream.person_id >= $part_from)
        and ($part_to is null or stream.person_id < $part_to)
),

touch_events as (
    select
        stream.journey_id,
        stream.person_id,
        stream.event_key,
        stream.occurred_at,
        stream.sequence_number,
        stream.activity,
        stream.channel,
        coalesce(stream.campaign_name, '(none)') as campaign
    from journeys.customer_stream as stream
    inner join reference.touch_activities as touches on touches.activity = stream.activity
    left join journeys.stream_scope as scope on scope.person_id = stream.person_id
    where ($all_persons or stream.sequence_number >= scope.read_from_sequence_number)
        and stream.channel is not null
        and stream.channel not in (select channel from reference.non_touch_channels)
        and ($part_from is null or stream.person_id >= $part_from)
        and ($part_to is null or stream.person_id < $part_to)
),

untouched as (
    select
        journey_ends.journey_id,
        journey_ends.person_id,
        cast(null as varchar) as event_key,
        journey_ends.started_at as occurred_at,
        journey_ends.first_sequence as sequence_number,
        '(no touch)' as activity,
        '(no touch)' as channel,
        '(no touch)' as campaign
    from journey_ends
    where not exists (select 1 from touch_events where touch_events.journey_id = journey_ends.journey_id)
),

all_touches as (
    select * from touch_events
    union all
    select * from untouched
),

numbered as (
    select
        all_touches.*,
        conversions.conversion_at,
        conversions.conversion_revenue,
        row_number() over (partition by all_touches.journey_id order by all_touches.occurred_at, all_touches.sequence_number) as touch_number,
        count(*) over (partition by all_touches.journey_id) as touch_count,
        lead(all_touches.channel) over (partition by all_touches.journey_id order by all_touches.occurred_at, all_touches.sequence_number) as next_channel,
        lead(all_touches.occurred_at) over (partition by all_touches.journey_id order by all_touches.occurred_at, all_touches.sequence_number) as next_touch_at
    from all_touches
    left join conversions on conversions.journey_id = all_touches.journey_id
),

final as (
    select
        journey_id,
        person_id,
        touch_number,
        touch_count,
        event_key,
        sequence_number,
        occurred_at,
        activity,
        channel,
        campaign,
        conversion_at is not null as converted,
        conversion_at,
        conversion_revenue,
        case when conversion_at is not null then (epoch(conversion_at) - epoch(occurred_at)) / 3600.0 end as hours_before_conversion,
        next_channel,
        (epoch(next_touch_at) - epoch(occurred_at)) / 3600.0 as hours_to_next_touch
    from numbered
)

select * from final

-- One row per event that is the customer's own doing: the stream without the passive activities
-- (setting marts.passive_activities: email deliveries, CRM bookkeeping, identify calls, page pings).
-- is_churn_signal marks explicit churn signals (marts.churn_signals: unsubscribes, a CRM contact
-- deleted or closed); is_purchase marks purchases (journeys.purchase_activities) and
-- first_purchase_at is the person's first. next_at and previous_* look at the person's previous and
-- next own events that are not churn signals (what churn's inactivity gaps are measured between).
-- An incremental run ($all_persons false) works on the persons journeys.stream_scope names only:
-- their purchases, and their rows from read_from_sequence_number on, of which it writes those from
-- from_sequence_number on (steps/customer_activity_scope.sql; docs/performance.md). The flags are
-- joins with the few distinct signals and purchase activities, not correlated subqueries, which
-- DuckDB ran over every stream row before the scope could cut them (10M events, one day's 147,454
-- persons: 9.4-9.7 s -> 7.1-7.3 s; a whole build 7.4-10.5 s -> 6.7-7.3 s).
-- A whole build runs in the stream's ranges of person ids where the stream was built in parts: each
-- scan of persons' rows keeps $part_from <= person_id < $part_to (null: open on that side;
-- journeys.StreamReader.in_parts, docs/performance.md "customer_stream in parts").
with churn_any_touchpoint as (
    select distinct activity from reference.churn_signals where touchpoint is null
),

churn_touchpoints as (
    select distinct activity, touchpoint from reference.churn_signals where touchpoint is not null
),

purchase_activities as (
    select distinct activity from journeys.purchase_activities
),

flagged as (
    select
        stream.person_id,
        stream.event_key,
        stream.sequence_number,
        stream.occurred_at,
        stream.journey_id,
        stream.activity,
        stream.channel,
        stream.touchpoint_type,
        stream.touchpoint,
        stream.campaign_name,
        stream.revenue,
        any_touchpoint.activity is not null or exact_touchpoint.activity is not null as is_churn_signal,
        purchases.activity is not null as is_purchase
    from journeys.customer_stream as stream
    left join churn_any_touchpoint as any_touchpoint on any_touchpoint.activity = stream.activity
    left join churn_touchpoints as exact_touchpoint
        on exact_touchpoint.activity = stream.activity and exact_touchpoint.touchpoint = stream.touchpoint
    left join purchase_activities as purchases on purchases.activity = stream.activity
    where ($all_persons or stream.person_id in (select person_id from journeys.stream_scope))
        and ($part_from is null or stream.person_id >= $part_from)
        and ($part_to is null or stream.person_id < $part_to)
),

own as (
    select
        flagged.*,
        scope.from_sequence_number as scope_from,
        scope.read_from_sequence_number as scope_read_from
    from flagged
    left join journeys.stream_scope as scope on scope.person_id = flagged.person_id
    where (flagged.is_churn_signal or flagged.activity not in (select activity from reference.passive_activities))
        and ($all_persons or (
            scope.person_id is not null
            and (flagged.is_purchase or flagged.sequence_number >= scope.read_from_sequence_number)
        ))
),

first_purchases as (
    select person_id, min(occurred_at) as first_purchase_at from own where is_purchase group by person_id
),

windowed as (
    select * from own where $all_persons or sequence_number >= scope_read_from
),

neighbours as (
    -- next_at / previous_*: the neighbours among the person's events that are not churn signals,
    -- in the same window pass as the signals' own (partitioned apart, then left null for them)
    select
        windowed.*,
        first_purchases.first_purchase_at,
        case when not windowed.is_churn_signal then lead(windowed.occurred_at)
            over (partition by windowed.person_id, windowed.is_churn_signal order by windowed.sequence_number) end as next_at,
        case when not windowed.is_churn_signal then lag(windowed.activity)
            over (partition by windowed.person_id, windowed.is_churn_signal order by windowed.sequence_number) end as previous_activity,
        case when not windowed.is_churn_signal then lag(windowed.channel)
            over (partition by windowed.person_id, windowed.is_churn_signal order by windowed.sequence_number) end as previous_channel
    from windowed
    left join first_purchases on first_purchases.person_id = windowed.person_id
),

final as (
    select
        person_id,
        event_key,
        sequence_number,
        occurred_at,
        journey_id,
        activity,
        channel,
        touchpoint_type,
        touchpoint,
        campaign_name,
        revenue,
        is_churn_signal,
        is_purchase,
        first_purchase_at,
        next_at,
        previous_activity,
        previous_channel
    from neighbours
    where $all_persons or sequence_number >= scope_from
)

select * from final

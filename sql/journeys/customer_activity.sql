-- One row per event that is the customer's own doing: the stream without the passive activities
-- (setting marts.passive_activities: email deliveries, CRM bookkeeping, identify calls, page pings).
-- is_churn_signal marks explicit churn signals (marts.churn_signals: unsubscribes, a CRM contact
-- deleted or closed); is_purchase marks purchases (journeys.purchase_activities) and
-- first_purchase_at is the person's first. next_at and previous_* look at the person's previous and
-- next own events that are not churn signals (what churn's inactivity gaps are measured between).
-- An incremental run ($all_persons false) works on the persons journeys.stream_scope names only:
-- their purchases, and their rows from read_from_sequence_number on, of which it writes those from
-- from_sequence_number on (steps/customer_activity_scope.sql; docs/performance.md). The scope is
-- joined after the flags, not before: joined first, the flags' subqueries cost a whole build
-- another pass (1M events: 1.0 -> 1.2 s).
with flagged as (
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
        exists (
            select 1 from reference.churn_signals as signals
            where signals.activity = stream.activity and (signals.touchpoint is null or signals.touchpoint = stream.touchpoint)
        ) as is_churn_signal,
        exists (select 1 from journeys.purchase_activities as purchases where purchases.activity = stream.activity) as is_purchase
    from journeys.customer_stream as stream
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

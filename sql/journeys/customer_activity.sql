-- One row per event that is the customer's own doing: the stream without the passive activities
-- (setting marts.passive_activities: email deliveries, CRM bookkeeping, identify calls, page pings).
-- is_churn_signal marks explicit churn signals (marts.churn_signals: unsubscribes, a CRM contact
-- deleted or closed); is_purchase marks purchases (journeys.purchase_activities) and
-- first_purchase_at is the person's first. next_at and previous_* look at the person's previous and
-- next own events that are not churn signals (what churn's inactivity gaps are measured between).
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
    select * from flagged
    where is_churn_signal or activity not in (select activity from reference.passive_activities)
),

first_purchases as (
    select person_id, min(occurred_at) as first_purchase_at from own where is_purchase group by person_id
),

final as (
    -- next_at / previous_*: the neighbours among the person's events that are not churn signals,
    -- in the same window pass as the signals' own (partitioned apart, then left null for them)
    select
        own.*,
        first_purchases.first_purchase_at,
        case when not own.is_churn_signal then lead(own.occurred_at)
            over (partition by own.person_id, own.is_churn_signal order by own.sequence_number) end as next_at,
        case when not own.is_churn_signal then lag(own.activity)
            over (partition by own.person_id, own.is_churn_signal order by own.sequence_number) end as previous_activity,
        case when not own.is_churn_signal then lag(own.channel)
            over (partition by own.person_id, own.is_churn_signal order by own.sequence_number) end as previous_channel
    from own
    left join first_purchases on first_purchases.person_id = own.person_id
)

select * from final

-- Grain: one row per customer (a person with a purchase) x churn, plus one closing row for each
-- customer not churned at the data's end. Definitions and a worked example: docs/churn.md.
--
-- From the first purchase on, each of the customer's own events (journeys.customer_activity) is
-- followed by the next one. The customer churns after an event when:
--   * an explicit churn signal (marts.churn_signals: unsubscribe, CRM contact deleted or closed)
--     comes before the next own event and within the churn window: churned_at = the signal's time,
--     churn_reason = the signal's activity; or
--   * the gap to the next own event (or to the data's end, setting marts.as_of, default the last
--     event in the stream) is longer than the churn window: churned_at = the event's time + window,
--     churn_reason = 'inactivity'.
-- The window is $churn_seconds (marts.churn_days, 90 days) unless marts.churn_days_by_channel
-- sets one for the channel of that last event. The churn point is that last event (last_*), with
-- the one before it (previous_*). A customer who comes back (an own event after churning) has
-- returned_at set and outcome 'churned_returned'; the last churn with no return is 'churned'. A
-- customer whose last event is less than a window before the data's end is 'censored': we cannot
-- know yet whether they churned, so they are never counted as churned.
with as_of as (
    select cast($as_of as timestamp) as as_of
),

customer_events as (
    select * from journeys.customer_activity
    where first_purchase_at is not null and occurred_at >= first_purchase_at
),

own_events as (
    select customer_events.*, coalesce(windows.churn_seconds, $churn_seconds) as churn_seconds
    from customer_events
    left join reference.churn_windows as windows on windows.channel = customer_events.channel
    where not customer_events.is_churn_signal
),

signal_hits as (
    select
        own_events.person_id,
        own_events.sequence_number,
        signals.occurred_at as signal_at,
        signals.activity as signal_activity,
        row_number() over (partition by own_events.person_id, own_events.sequence_number
                           order by signals.occurred_at, signals.sequence_number) as pick
    from own_events
    inner join customer_events as signals
        on signals.person_id = own_events.person_id
        and signals.is_churn_signal
        and signals.sequence_number > own_events.sequence_number
        and (own_events.next_at is null or signals.occurred_at < own_events.next_at)
),

classified as (
    select
        own_events.*,
        signal_hits.signal_at,
        signal_hits.signal_activity,
        as_of.as_of,
        case
            when signal_hits.signal_at is not null
                and epoch(signal_hits.signal_at) - epoch(own_events.occurred_at) <= own_events.churn_seconds then 'signal'
            when epoch(coalesce(own_events.next_at, as_of.as_of)) - epoch(own_events.occurred_at) > own_events.churn_seconds then 'inactivity'
            when own_events.next_at is null then 'censored'
        end as kind
    from own_events
    cross join as_of
    left join signal_hits
        on signal_hits.person_id = own_events.person_id
        and signal_hits.sequence_number = own_events.sequence_number
        and signal_hits.pick = 1
),

final as (
    select
        person_id,
        row_number() over (partition by person_id order by sequence_number) as churn_number,
        case
            when kind = 'censored' then 'censored'
            when next_at is null then 'churned'
            else 'churned_returned'
        end as outcome,
        case when kind = 'signal' then signal_activity when kind = 'inactivity' then 'inactivity' end as churn_reason,
        case
            when kind = 'signal' then signal_at
            when kind = 'inactivity' then occurred_at + to_seconds(churn_seconds)
        end as churned_at,
        next_at as returned_at,
        churn_seconds / 86400 as churn_window_days,
        event_key as last_event_key,
        occurred_at as last_touch_at,
        activity as last_activity,
        channel as last_channel,
        touchpoint_type as last_touchpoint_type,
        touchpoint as last_touchpoint,
        previous_activity,
        previous_channel,
        (epoch(coalesce(case when kind = 'signal' then signal_at end, next_at, as_of)) - epoch(occurred_at)) / 86400.0 as days_inactive,
        first_purchase_at,
        cast(date_trunc('month', first_purchase_at) as date) as cohort_month
    from classified
    where kind is not null
)

select * from final

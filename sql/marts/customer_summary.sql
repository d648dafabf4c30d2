-- Grain: one row per person in the customer stream. Definitions: docs/customers.md.
--
-- first_touch_* / last_touch_*: the person's first and last own event (journeys.customer_activity:
-- passive events such as email deliveries and churn signals excluded) and its channel;
-- found as the own events with the person's smallest and largest sequence_number, joined back by
-- (person, sequence) rather than numbered by two window sorts (10M events: 3.4 -> 2.6 s, medians),
-- from only those rows (own_ends);
-- furthest_stage / current_stage: in the main stage model (the first of stages.active_models,
-- stages.unit_progress); orders: purchases (journeys.purchase_activities); revenue: purchases'
-- revenue net of returns and refunds (negative revenue); converted: at least one order.
-- RFM (customers only): recency_days from the last order to the data's end (marts.as_of, default
-- the last event), frequency = orders, monetary = revenue; r/f/m_score are quintiles 1-5 among
-- customers (5 = most recent, most frequent, highest revenue; ties by person_id).
-- churn_status: 'churned', 'censored' (a customer not churned by the data's end) or
-- 'not_customer' (marts.churn_points); churned_at and churn_reason of the final churn.
-- lifecycle_status for the last complete $period before the data's end (growth accounting; a
-- period still running would call everyone quiet so far dormant): 'new' (first own event in it),
-- 'returning' (active in it and the period before), 'resurrecting' (active in it, not in the
-- period before, but earlier), 'dormant' (active in the period before, not in it), 'inactive'
-- (active in neither); null for persons first active after that period.
with as_of as (
    select cast($as_of as timestamp) as as_of
),

periods as (
    select
        last_period,
        cast(date_trunc($period, last_period - interval '1' day) as date) as previous_period
    from (
        select cast(date_trunc($period, cast(date_trunc($period, as_of + interval '1' day) as date) - interval '1' day) as date) as last_period
        from as_of
    ) as complete
),

stream_summary as (
    -- a person's journeys are numbered 1, 2, ... in its stream: their count is the last number
    select person_id, count(*) as events, max(journey_number) as journeys, min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from journeys.customer_stream
    group by person_id
),

own as (
    select
        person_id,
        occurred_at,
        channel,
        activity,
        is_purchase,
        revenue,
        sequence_number,
        cast(date_trunc($period, occurred_at) as date) as period_start
    from journeys.customer_activity
    where not is_churn_signal
),

person_orders as (
    select
        person_id,
        count(case when is_purchase then 1 end) as orders,
        cast(sum(case when is_purchase or revenue < 0 then cast(coalesce(revenue, 0) as decimal(38, 12)) else 0 end) as double) as revenue,
        min(case when is_purchase then occurred_at end) as first_order_at,
        max(case when is_purchase then occurred_at end) as last_order_at,
        min(period_start) as first_active_period,
        max(case when period_start = periods.last_period then 1 else 0 end) as active_last,
        max(case when period_start = periods.previous_period then 1 else 0 end) as active_previous,
        max(case when period_start < periods.previous_period then 1 else 0 end) as active_before,
        min(sequence_number) as first_own_sequence,
        max(sequence_number) as last_own_sequence
    from own
    cross join periods
    group by person_id
),

rfm as (
    select
        person_orders.person_id,
        (epoch(as_of.as_of) - epoch(person_orders.last_order_at)) / 86400.0 as recency_days,
        ntile(5) over (order by person_orders.last_order_at, person_orders.person_id) as r_score,
        ntile(5) over (order by person_orders.orders, person_orders.person_id) as f_score,
        ntile(5) over (order by person_orders.revenue, person_orders.person_id) as m_score
    from person_orders
    cross join as_of
    where person_orders.orders > 0
),

own_ends as (
    -- each person's first and last own event: the rows of `own` at the person's smallest and
    -- largest sequence_number, found by a join with the persons (not two joins of every own row)
    select own.person_id, own.sequence_number, own.occurred_at, own.channel, own.activity
    from own
    inner join person_orders
        on person_orders.person_id = own.person_id
        and (own.sequence_number = person_orders.first_own_sequence or own.sequence_number = person_orders.last_own_sequence)
),

final_churn as (
    select person_id, outcome, churned_at, churn_reason
    from marts.churn_points
    where outcome in ('churned', 'censored')
),

progress as (
    select person_id, furthest_stage, current_stage
    from stages.unit_progress
    where unit_type = 'person' and stage_model = $main_model
),

final as (
    select
        stream_summary.person_id,
        stream_summary.events,
        stream_summary.journeys,
        stream_summary.first_event_at,
        stream_summary.last_event_at,
        first_touch.occurred_at as first_touch_at,
        first_touch.channel as first_touch_channel,
        first_touch.activity as first_touch_activity,
        last_touch.occurred_at as last_touch_at,
        last_touch.channel as last_touch_channel,
        last_touch.activity as last_touch_activity,
        progress.furthest_stage,
        progress.current_stage,
        coalesce(person_orders.orders, 0) > 0 as converted,
        coalesce(person_orders.orders, 0) as orders,
        coalesce(person_orders.revenue, 0) as revenue,
        person_orders.first_order_at,
        person_orders.last_order_at,
        rfm.recency_days,
        case when rfm.person_id is not null then person_orders.orders end as frequency,
        case when rfm.person_id is not null then person_orders.revenue end as monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        coalesce(final_churn.outcome, 'not_customer') as churn_status,
        case when final_churn.outcome = 'churned' then final_churn.churned_at end as churned_at,
        case when final_churn.outcome = 'churned' then final_churn.churn_reason end as churn_reason,
        case
            when person_orders.person_id is null then 'inactive'
            when person_orders.first_active_period > periods.last_period then null
            when person_orders.active_last = 1 and person_orders.first_active_period = periods.last_period then 'new'
            when person_orders.active_last = 1 and person_orders.active_previous = 1 then 'returning'
            when person_orders.active_last = 1 and person_orders.active_before = 1 then 'resurrecting'
            when person_orders.active_last = 0 and person_orders.active_previous = 1 then 'dormant'
            else 'inactive'
        end as lifecycle_status,
        periods.last_period as lifecycle_period
    from stream_summary
    cross join periods
    left join person_orders on person_orders.person_id = stream_summary.person_id
    left join own_ends as first_touch
        on first_touch.person_id = person_orders.person_id and first_touch.sequence_number = person_orders.first_own_sequence
    left join own_ends as last_touch
        on last_touch.person_id = person_orders.person_id and last_touch.sequence_number = person_orders.last_own_sequence
    left join rfm on rfm.person_id = stream_summary.person_id
    left join final_churn on final_churn.person_id = stream_summary.person_id
    left join progress on progress.person_id = stream_summary.person_id
)

select * from final

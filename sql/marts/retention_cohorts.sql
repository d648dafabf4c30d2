-- Grain: one row per cohort x period: customers grouped by the $period (week starting Monday, or
-- month) of their first purchase, and for each period from the cohort's own (period_number 0) up
-- to the data's last period, the share of the cohort active in it: share_purchasing (made a
-- purchase, journeys.purchase_activities) and share_active (any own event, journeys.customer_activity:
-- passive events and churn signals excluded). Period 0 always has share_purchasing 1.
-- is_partial: the period runs past the data's end (marts.as_of), so its shares may still rise.
with as_of as (
    select cast($as_of as timestamp) as as_of
),

customers as (
    select person_id, cast(date_trunc($period, min(first_purchase_at)) as date) as cohort
    from journeys.customer_activity
    where first_purchase_at is not null
    group by person_id
),

cohort_sizes as (
    select cohort, count(*) as customers from customers group by cohort
),

calendar as (
    select listed.period_start
    from reference.calendar as listed
    cross join as_of
    where listed.period = $period and cast(listed.period_start as timestamp) <= as_of.as_of
),

cells as (
    select cohort_sizes.cohort, cohort_sizes.customers, calendar.period_start
    from cohort_sizes
    inner join calendar on calendar.period_start >= cohort_sizes.cohort
),

person_periods as (
    select
        customers.person_id,
        customers.cohort,
        cast(date_trunc($period, own.occurred_at) as date) as period_start,
        max(case when own.is_purchase then 1 else 0 end) as purchased
    from customers
    inner join journeys.customer_activity as own on own.person_id = customers.person_id
    where not own.is_churn_signal
    group by customers.person_id, customers.cohort, cast(date_trunc($period, own.occurred_at) as date)
),

activity as (
    select cohort, period_start, count(*) as active_customers, count(case when purchased = 1 then 1 end) as purchasing_customers
    from person_periods
    group by cohort, period_start
),

final as (
    select
        cells.cohort,
        cells.period_start,
        case
            when $period = 'week' then cast(round((epoch(cast(cells.period_start as timestamp)) - epoch(cast(cells.cohort as timestamp))) / 604800.0) as bigint)
            else (year(cells.period_start) - year(cells.cohort)) * 12 + month(cells.period_start) - month(cells.cohort)
        end as period_number,
        cells.customers as cohort_customers,
        coalesce(activity.active_customers, 0) as active_customers,
        coalesce(activity.purchasing_customers, 0) as purchasing_customers,
        cast(coalesce(activity.active_customers, 0) as double) / cells.customers as share_active,
        cast(coalesce(activity.purchasing_customers, 0) as double) / cells.customers as share_purchasing,
        date_trunc($period, as_of.as_of) = cast(cells.period_start as timestamp) as is_partial
    from cells
    cross join as_of
    left join activity on activity.cohort = cells.cohort and activity.period_start = cells.period_start
)

select * from final

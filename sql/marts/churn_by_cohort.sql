-- Grain: one row per cohort month (the month of a customer's first purchase), plus an 'all' row
-- with cohort_month null. customers: persons whose first purchase falls in it; churned: customers
-- whose final state is churned (marts.churn_points, outcome 'churned'); churned_ever: churned at
-- least once, returned or not; censored: not churned by the data's end (docs/churn.md: never
-- counted as churned); churn_rate = churned / customers; median_days_to_churn: first purchase to
-- the final churn, over churned customers.
with final_states as (
    select
        person_id,
        cohort_month,
        outcome,
        churned_at,
        first_purchase_at
    from marts.churn_points
    where outcome in ('churned', 'censored')
),

ever as (
    select distinct person_id from marts.churn_points where outcome in ('churned', 'churned_returned')
),

grouped as (
    select 'cohort' as level, cohort_month, final_states.person_id, outcome, churned_at, first_purchase_at,
        ever.person_id is not null as churned_ever
    from final_states
    left join ever on ever.person_id = final_states.person_id
    union all
    select 'all' as level, cast(null as date) as cohort_month, final_states.person_id, outcome, churned_at, first_purchase_at,
        ever.person_id is not null as churned_ever
    from final_states
    left join ever on ever.person_id = final_states.person_id
),

final as (
    select
        level,
        cohort_month,
        count(*) as customers,
        count(case when outcome = 'churned' then 1 end) as churned,
        count(case when churned_ever then 1 end) as churned_ever,
        count(case when outcome = 'censored' then 1 end) as censored,
        cast(count(case when outcome = 'churned' then 1 end) as double) / count(*) as churn_rate,
        percentile_cont(0.5) within group (
            order by case when outcome = 'churned' then (epoch(churned_at) - epoch(first_purchase_at)) / 86400.0 end
        ) as median_days_to_churn
    from grouped
    group by level, cohort_month
)

select * from final

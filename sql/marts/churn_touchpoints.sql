-- Grain: one row per touchpoint (activity x channel) seen in customers' own events after their
-- first purchase: how often it was a churn point (the last event before a churn, returned or not;
-- marts.churn_points) against how often it occurs at all, ranked by churn lift.
--
-- churn_points: churns whose last event was this touchpoint; events: customers' own events of it
-- from their first purchase on (churn signals excluded); churn_share = churn_points / all churn
-- points; event_share = events / all such events; churn_lift = churn_share / event_share (above 1:
-- more often the last thing before a churn than its frequency explains); churn_probability =
-- churn_points / events. Touchpoints with fewer than $min_support events are ranked last
-- (lift_rank null): small counts give unstable lifts.
with customer_events as (
    select activity, channel
    from journeys.customer_activity
    where first_purchase_at is not null and occurred_at >= first_purchase_at and not is_churn_signal
),

occurrences as (
    select activity, coalesce(channel, 'unknown') as channel, count(*) as events
    from customer_events
    group by activity, coalesce(channel, 'unknown')
),

churns as (
    select last_activity as activity, coalesce(last_channel, 'unknown') as channel, count(*) as churn_points
    from marts.churn_points
    where outcome in ('churned', 'churned_returned')
    group by last_activity, coalesce(last_channel, 'unknown')
),

shares as (
    select
        occurrences.activity,
        occurrences.channel,
        occurrences.events,
        coalesce(churns.churn_points, 0) as churn_points,
        cast(coalesce(churns.churn_points, 0) as double) / nullif(sum(coalesce(churns.churn_points, 0)) over (), 0) as churn_share,
        cast(occurrences.events as double) / sum(occurrences.events) over () as event_share
    from occurrences
    left join churns on churns.activity = occurrences.activity and churns.channel = occurrences.channel
),

final as (
    select
        activity,
        channel,
        events,
        churn_points,
        churn_share,
        event_share,
        churn_share / event_share as churn_lift,
        cast(churn_points as double) / events as churn_probability,
        case when events >= $min_support then
            row_number() over (
                partition by case when events >= $min_support then 1 else 0 end
                order by churn_share / event_share desc, activity, channel
            )
        end as lift_rank
    from shares
)

select * from final

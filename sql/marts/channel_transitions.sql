-- Grain: one row per step x from channel x to channel: the edges of the Sankey of journeys' touch
-- paths (journeys.touches, repeats kept). Step 0 goes from '(start)' to the first touch; step n
-- from the n-th touch to the next, or to '(conversion)' / '(no conversion)' after the last.
-- transitions: how many times (one per journey and step, so also journeys); is_repeat: the same
-- channel twice in a row; median_hours and p90_hours between the two touches (null for the
-- start and end edges). Sum over steps for channel-to-channel totals.
with steps as (
    select
        journey_id,
        touch_number,
        touch_count,
        channel,
        occurred_at,
        converted,
        lead(channel) over (partition by journey_id order by touch_number) as next_channel,
        lead(occurred_at) over (partition by journey_id order by touch_number) as next_at
    from journeys.touches
),

edges as (
    select 0 as step, '(start)' as from_channel, channel as to_channel, cast(null as double) as hours
    from steps
    where touch_number = 1
    union all
    select touch_number as step, channel as from_channel, next_channel as to_channel, (epoch(next_at) - epoch(occurred_at)) / 3600.0 as hours
    from steps
    where next_channel is not null
    union all
    select touch_number as step, channel as from_channel, case when converted then '(conversion)' else '(no conversion)' end as to_channel,
        cast(null as double) as hours
    from steps
    where touch_number = touch_count
),

final as (
    select
        step,
        from_channel,
        to_channel,
        count(*) as transitions,
        from_channel = to_channel as is_repeat,
        percentile_cont(0.5) within group (order by hours) as median_hours,
        percentile_cont(0.9) within group (order by hours) as p90_hours
    from edges
    group by step, from_channel, to_channel
)

select * from final

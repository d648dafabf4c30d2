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
    -- each touch gives up to three edges (a kind each: 0 the start, 1 to the next touch, 2 to the
    -- end), from one pass over the touches: a UNION ALL of three filters read the windowed touches
    -- three times, which DuckDB materialised (at 100M events this step filled the disk spilling)
    select
        case kinds.kind when 0 then 0 else steps.touch_number end as step,
        case kinds.kind when 0 then '(start)' else steps.channel end as from_channel,
        case kinds.kind
            when 0 then steps.channel
            when 1 then steps.next_channel
            when 2 then case when steps.converted then '(conversion)' else '(no conversion)' end
        end as to_channel,
        case when kinds.kind = 1 then (epoch(steps.next_at) - epoch(steps.occurred_at)) / 3600.0 end as hours
    from steps
    cross join (values (0), (1), (2)) as kinds (kind)
    where (kinds.kind = 0 and steps.touch_number = 1)
        or (kinds.kind = 1 and steps.next_channel is not null)
        or (kinds.kind = 2 and steps.touch_number = steps.touch_count)
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

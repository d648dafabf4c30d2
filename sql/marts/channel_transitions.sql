-- Grain: one row per step x from channel x to channel: the edges of the Sankey of journeys' touch
-- paths (journeys.touches, repeats kept). Step 0 goes from '(start)' to the first touch; step n
-- from the n-th touch to the next, or to '(conversion)' / '(no conversion)' after the last.
-- transitions: how many times (one per journey and step, so also journeys); is_repeat: the same
-- channel twice in a row; median_hours and p90_hours between the two touches (null for the
-- start and end edges). Sum over steps for channel-to-channel totals.
with edges as (
    -- each touch gives up to three edges (a kind each: 0 the start, 1 to the next touch, 2 to the
    -- end), from one pass over the touches: a UNION ALL of three filters read the windowed touches
    -- three times, which DuckDB materialised (at 100M events this step filled the disk spilling).
    -- The next touch comes from journeys.touches (next_channel, hours_to_next_touch): a window here,
    -- feeding the percentiles below, spilled about 24 GB within 90 s at 100M events.
    select
        case kinds.kind when 0 then 0 else touches.touch_number end as step,
        case kinds.kind when 0 then '(start)' else touches.channel end as from_channel,
        case kinds.kind
            when 0 then touches.channel
            when 1 then touches.next_channel
            when 2 then case when touches.converted then '(conversion)' else '(no conversion)' end
        end as to_channel,
        case when kinds.kind = 1 then touches.hours_to_next_touch end as hours
    from journeys.touches as touches
    cross join (values (0), (1), (2)) as kinds (kind)
    where (kinds.kind = 0 and touches.touch_number = 1)
        or (kinds.kind = 1 and touches.next_channel is not null)
        or (kinds.kind = 2 and touches.touch_number = touches.touch_count)
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

-- One row per attribution dimension (channel, campaign) x transition of the first-order Markov
-- chain over every journey's touch path (journeys.touches), converting or not: '(start)' -> the
-- first touch's state -> ... -> '(conversion)' or '(null)'. Consecutive touches in the same state
-- are collapsed into one: a self-loop never changes where the chain is absorbed, so removal
-- effects are the same with or without them (docs/attribution.md).
with states as (
    select journey_id, touch_number, converted, 'channel' as dimension, channel as state from journeys.touches
    union all
    select journey_id, touch_number, converted, 'campaign' as dimension, campaign as state from journeys.touches
),

marked as (
    select
        states.*,
        lag(state) over (partition by dimension, journey_id order by touch_number) as repeated_state
    from states
),

collapsed as (
    select * from marked where repeated_state is null or repeated_state <> state
),

stepped as (
    select
        dimension,
        journey_id,
        converted,
        state,
        coalesce(lag(state) over (partition by dimension, journey_id order by touch_number), '(start)') as from_state,
        lead(state) over (partition by dimension, journey_id order by touch_number) as next_state
    from collapsed
),

edges as (
    select dimension, from_state, state as to_state from stepped
    union all
    select dimension, state as from_state, case when converted then '(conversion)' else '(null)' end as to_state
    from stepped
    where next_state is null
),

final as (
    select dimension, from_state, to_state, count(*) as transitions
    from edges
    group by dimension, from_state, to_state
)

select * from final

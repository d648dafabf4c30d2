-- Grain: one row per kind (cart, checkout) x breakdown (all; first_touch_channel of the unit) x
-- value: cart and checkout abandonment. A funnel unit (journey, or person: stages.unit) that did a
-- cart activity (setting marts.cart_activities; checkout: marts.checkout_activities) purchased if
-- the same person made a purchase (journeys.purchase_activities) at or after its first such
-- activity and within the window ($window_seconds, stages.window_days); otherwise it abandoned
-- once the window has closed before the data's end, and is still_open before that.
-- abandonment_rate = abandoned / (abandoned + purchased).
with as_of as (
    select cast($as_of as timestamp) as as_of
),

firsts as (
    select
        case when $unit = 'person' then stream.person_id else stream.journey_id end as unit_id,
        stream.person_id,
        kinds.kind,
        min(stream.occurred_at) as first_at
    from journeys.customer_stream as stream
    inner join reference.cart_activities as kinds on kinds.activity = stream.activity
    group by case when $unit = 'person' then stream.person_id else stream.journey_id end, stream.person_id, kinds.kind
),

purchases as (
    select stream.person_id, stream.occurred_at
    from journeys.customer_stream as stream
    inner join journeys.purchase_activities as listed on listed.activity = stream.activity
),

outcomes as (
    select
        firsts.unit_id,
        firsts.kind,
        firsts.first_at,
        max(case when purchases.person_id is not null then 1 else 0 end) as purchased
    from firsts
    left join purchases
        on purchases.person_id = firsts.person_id
        and purchases.occurred_at >= firsts.first_at
        and epoch(purchases.occurred_at) - epoch(firsts.first_at) <= $window_seconds
    group by firsts.unit_id, firsts.kind, firsts.first_at
),

labelled as (
    select
        outcomes.kind,
        units.first_touch_channel,
        case
            when outcomes.purchased = 1 then 'purchased'
            when epoch(outcomes.first_at) + $window_seconds <= epoch(as_of.as_of) then 'abandoned'
            else 'still_open'
        end as outcome
    from outcomes
    cross join as_of
    left join stages.funnel_units as units on units.unit_id = outcomes.unit_id
),

broken_down as (
    select kind, 'all' as breakdown, 'all' as breakdown_value, outcome from labelled
    union all
    select kind, 'first_touch_channel' as breakdown, coalesce(first_touch_channel, 'unknown') as breakdown_value, outcome from labelled
),

final as (
    select
        kind,
        breakdown,
        breakdown_value,
        count(*) as units,
        count(case when outcome = 'purchased' then 1 end) as purchased,
        count(case when outcome = 'abandoned' then 1 end) as abandoned,
        count(case when outcome = 'still_open' then 1 end) as still_open,
        cast(count(case when outcome = 'abandoned' then 1 end) as double)
            / nullif(count(case when outcome <> 'still_open' then 1 end), 0) as abandonment_rate
    from broken_down
    group by kind, breakdown, breakdown_value
)

select * from final

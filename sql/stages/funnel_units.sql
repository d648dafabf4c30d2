-- One row per funnel unit (a journey, or a person when stages.unit = 'person'): when it started,
-- its cohort, its first-touch channel and the channel of the touch before its first purchase;
-- sequence_number is its first event's in the person's stream.
-- An incremental run ($all_persons false) reads the persons journeys.stream_scope names from
-- read_from_sequence_number on: a journey unit's rows from the first event of the journey holding
-- the first changed row (that journey and the later ones are built again), a person unit's all
-- (journeys/steps/journey_scope.sql; docs/performance.md).
with stream as (
    select
        case when $unit = 'person' then stream.person_id else stream.journey_id end as unit_id,
        stream.person_id,
        stream.occurred_at,
        stream.sequence_number,
        stream.activity,
        stream.channel,
        stream.previous_channel,
        stream.is_journey_start
    from journeys.customer_stream as stream
    left join journeys.stream_scope as scope on scope.person_id = stream.person_id
    where $all_persons or stream.sequence_number >= scope.read_from_sequence_number
),

unit_starts as (
    -- a unit's first event: a journey's is its journey start, a person's its first in the stream
    -- (a filter: numbering every event by unit to find them sorted all 10M at 10M events)
    select *
    from stream
    where case when $unit = 'person' then sequence_number = 1 else is_journey_start end
),

first_purchase as (
    select
        stream.unit_id,
        stream.previous_channel,
        row_number() over (partition by stream.unit_id order by stream.sequence_number) as purchase_number
    from stream
    inner join journeys.purchase_activities as purchases on purchases.activity = stream.activity
),

final as (
    select
        unit_starts.unit_id,
        unit_starts.person_id,
        unit_starts.sequence_number,
        unit_starts.occurred_at as started_at,
        cast(date_trunc('week', unit_starts.occurred_at) as date) as cohort_week,
        cast(date_trunc('month', unit_starts.occurred_at) as date) as cohort_month,
        unit_starts.channel as first_touch_channel,
        first_purchase.previous_channel as last_channel_before_purchase
    from unit_starts
    left join first_purchase on first_purchase.unit_id = unit_starts.unit_id and first_purchase.purchase_number = 1
)

select * from final

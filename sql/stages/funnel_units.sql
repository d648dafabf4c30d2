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
        stream.previous_channel
    from journeys.customer_stream as stream
    left join journeys.stream_scope as scope on scope.person_id = stream.person_id
    where $all_persons or stream.sequence_number >= scope.read_from_sequence_number
),

ranked as (
    select
        stream.*,
        row_number() over (partition by unit_id order by sequence_number) as position
    from stream
),

first_purchase as (
    select
        ranked.unit_id,
        ranked.previous_channel,
        row_number() over (partition by ranked.unit_id order by ranked.sequence_number) as purchase_number
    from ranked
    inner join journeys.purchase_activities as purchases on purchases.activity = ranked.activity
),

final as (
    select
        ranked.unit_id,
        ranked.person_id,
        ranked.sequence_number,
        ranked.occurred_at as started_at,
        cast(date_trunc('week', ranked.occurred_at) as date) as cohort_week,
        cast(date_trunc('month', ranked.occurred_at) as date) as cohort_month,
        ranked.channel as first_touch_channel,
        first_purchase.previous_channel as last_channel_before_purchase
    from ranked
    left join first_purchase on first_purchase.unit_id = ranked.unit_id and first_purchase.purchase_number = 1
    where ranked.position = 1
)

select * from final

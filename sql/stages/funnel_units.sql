-- One row per funnel unit (a journey, or a person when stages.unit = 'person'): when it started,
-- its cohort, its first-touch channel and the channel of the touch before its first purchase;
-- sequence_number is its first event's in the person's stream.
-- An incremental run ($all_persons false) reads the persons journeys.stream_scope names from
-- read_from_sequence_number on: a journey unit's rows from the first event of the journey holding
-- the first changed row (that journey and the later ones are built again), a person unit's all
-- (journeys/steps/journey_scope.sql; docs/performance.md).
with flagged as (
    select
        case when $unit = 'person' then stream.person_id else stream.journey_id end as unit_id,
        stream.person_id,
        stream.occurred_at,
        stream.sequence_number,
        stream.channel,
        stream.previous_channel,
        -- a unit's first event: a journey's is its journey start, a person's its first in the stream
        case when $unit = 'person' then stream.sequence_number = 1 else stream.is_journey_start end as is_unit_start,
        stream.activity in (select activity from journeys.purchase_activities) as is_purchase
    from journeys.customer_stream as stream
    left join journeys.stream_scope as scope on scope.person_id = stream.person_id
    where $all_persons or stream.sequence_number >= scope.read_from_sequence_number
),

stream as (
    -- only the rows the model reads: unit starts and purchases. Two CTEs below read this one, so
    -- DuckDB materialises it: filtered here it holds those rows, not the whole stream (10M events:
    -- the SELECT into the warehouse 1.00-1.51 -> 0.63-0.65 s, three alternating runs).
    select * from flagged where is_unit_start or is_purchase
),

unit_starts as (
    -- a filter: numbering every event by unit to find them sorted all 10M at 10M events
    select * from stream where is_unit_start
),

first_purchase as (
    select
        unit_id,
        previous_channel,
        row_number() over (partition by unit_id order by sequence_number) as purchase_number
    from stream
    where is_purchase
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

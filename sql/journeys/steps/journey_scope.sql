-- What an incremental run of a model built by journey (journeys.touches; stages.funnel_units with
-- $unit 'journey') reads and writes again, per person of journeys.stream_scope (whose stream rows
-- changed from from_sequence_number on; docs/performance.md, "Incremental runs"). A journey's rows
-- depend on all its events (their number and order, its first event, whether it ends with a
-- purchase), and the journey holding the person's first changed row may have gained or lost
-- events: so the run builds again that journey and every later one, from that journey's first
-- event (the person's last journey start at or before from_sequence_number; when the first
-- changed row starts a journey, the journey before it keeps its events and its end). Each row of
-- those journeys has a sequence_number at or after it, and each row of the earlier ones one
-- before it. A person built again whole (from_sequence_number 1) keeps 1, and so does every
-- person when the model's unit is the person ($unit 'person': its one row reads all its events).
-- changed_from_sequence_number keeps the first changed row, for a step after this one.
with journey_starts as (
    select scope.person_id, max(stream.sequence_number) as sequence_number
    from journeys.stream_scope as scope
    inner join journeys.customer_stream as stream
        on stream.person_id = scope.person_id and stream.sequence_number <= scope.from_sequence_number
    where stream.is_journey_start
    group by scope.person_id
),

final as (
    select
        scope.person_id,
        case when $unit = 'person' then 1 else coalesce(journey_starts.sequence_number, scope.from_sequence_number) end
            as from_sequence_number,
        case when $unit = 'person' then 1 else coalesce(journey_starts.sequence_number, scope.from_sequence_number) end
            as read_from_sequence_number,
        scope.from_sequence_number as changed_from_sequence_number
    from journeys.stream_scope as scope
    left join journey_starts on journey_starts.person_id = scope.person_id
)

select * from final

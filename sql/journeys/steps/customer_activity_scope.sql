-- What an incremental run of journeys.customer_activity reads and writes again, per person of
-- journeys.stream_scope (whose stream rows changed from from_sequence_number on; docs/performance.md,
-- "Incremental runs"). The person's rows before that are the same stream rows as at the last build,
-- so they keep their values, but for two: the last own event before it that is not a churn
-- signal has a next_at that may now be a new event, and everyone's first_purchase_at may now be a
-- new purchase. So the run writes again from that last event (from_sequence_number) and reads
-- from the one of those before it (read_from_sequence_number: the lag of its previous_activity and
-- previous_channel); first_purchase_at is updated on the kept rows. Without such an event both
-- stay at the stream's own from_sequence_number.
with last_kept as (
    select scope.person_id, max(activity.sequence_number) as sequence_number
    from journeys.stream_scope as scope
    inner join journeys.customer_activity as activity
        on activity.person_id = scope.person_id and activity.sequence_number < scope.from_sequence_number
    where not activity.is_churn_signal
    group by scope.person_id
),

one_before as (
    select last_kept.person_id, max(activity.sequence_number) as sequence_number
    from last_kept
    inner join journeys.customer_activity as activity
        on activity.person_id = last_kept.person_id and activity.sequence_number < last_kept.sequence_number
    where not activity.is_churn_signal
    group by last_kept.person_id
),

final as (
    select
        scope.person_id,
        coalesce(last_kept.sequence_number, scope.from_sequence_number) as from_sequence_number,
        coalesce(one_before.sequence_number, last_kept.sequence_number, scope.from_sequence_number) as read_from_sequence_number
    from journeys.stream_scope as scope
    left join last_kept on last_kept.person_id = scope.person_id
    left join one_before on one_before.person_id = scope.person_id
)

select * from final

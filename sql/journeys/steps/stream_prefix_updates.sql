-- The rows before a person's rebuilt suffix (steps/stream_suffix.sql) whose values change with it:
-- the last prefix row's next_channel becomes the first suffix row's channel, and the last prefix
-- occurrence of each activity the suffix holds has its activity_repeated_at set to the time of
-- that activity's first suffix occurrence. One row per changed row, with both columns' new values.
with suffix_rows as (
    select person_id, sequence_number, channel, activity, activity_occurrence, occurred_at
    from journeys.customer_stream_suffix
),

first_rows as (
    select suffix_rows.person_id, suffix_rows.sequence_number - 1 as prefix_sequence, suffix_rows.channel
    from suffix_rows
    inner join (select person_id, min(sequence_number) as first_sequence from suffix_rows group by person_id) as firsts
        on firsts.person_id = suffix_rows.person_id and firsts.first_sequence = suffix_rows.sequence_number
    where suffix_rows.sequence_number > 1
),

first_occurrences as (
    select
        suffix_rows.person_id,
        suffix_rows.activity,
        suffix_rows.activity_occurrence - 1 as prefix_occurrence,
        suffix_rows.occurred_at
    from suffix_rows
    inner join (
        select person_id, activity, min(activity_occurrence) as first_occurrence from suffix_rows group by person_id, activity
    ) as firsts
        on firsts.person_id = suffix_rows.person_id
        and firsts.activity is not distinct from suffix_rows.activity
        and firsts.first_occurrence = suffix_rows.activity_occurrence
    where suffix_rows.activity_occurrence > 1
),

stream_rows as (
    select person_id, sequence_number, activity, activity_occurrence, event_key, next_channel, activity_repeated_at
    from journeys.customer_stream
    where person_id in (select person_id from journeys.stream_suffixes)
),

final as (
    select
        stream_rows.event_key,
        case when first_rows.person_id is not null then first_rows.channel else stream_rows.next_channel end as next_channel,
        case
            when first_occurrences.person_id is not null then first_occurrences.occurred_at
            else stream_rows.activity_repeated_at
        end as activity_repeated_at
    from stream_rows
    left join first_rows
        on first_rows.person_id = stream_rows.person_id and first_rows.prefix_sequence = stream_rows.sequence_number
    left join first_occurrences
        on first_occurrences.person_id = stream_rows.person_id
        and first_occurrences.activity is not distinct from stream_rows.activity
        and first_occurrences.prefix_occurrence = stream_rows.activity_occurrence
    where first_rows.person_id is not null or first_occurrences.person_id is not null
)

select * from final

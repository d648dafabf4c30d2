-- The stream rows an incremental run builds again for a person touched only by new events
-- (journeys.stream_suffixes, from steps/stream_rebuilds.sql): every event from the person's first
-- new event on, in the stream's order, continuing the rows before it (the prefix, which stays).
--
-- The definitions are customer_stream.sql's; each running count starts from where the prefix
-- left it (docs/performance.md, "Incremental runs"):
-- * sequence_number continues from the prefix's last; the first suffix row's previous_* are the
--   last prefix row's;
-- * activity_occurrence continues from the prefix's count of that activity;
-- * a journey continues unless the first suffix event starts one by the usual rule against the last
--   prefix event (a purchase, or more than $journey_gap_seconds); journey_number counts on;
-- * a device's web visit continues unless its first suffix web event comes more than
--   $session_gap_seconds after the device's last prefix web event; a continued visit keeps its
--   start (for the $max_session_seconds parts) and, within the same part, its session_key.
-- The prefix rows whose neighbours change (the last row's next_channel, each activity's last
-- occurrence's activity_repeated_at) are set by steps/stream_prefix_updates.sql.
-- The final column list is customer_stream.sql's, in its order (the rows are inserted into that
-- table); tests/sql/test_incremental.py checks that continued streams equal whole rebuilds.
with suffixes as (
    select person_id, from_occurred_at, from_source_rank, from_event_key from journeys.stream_suffixes
),

old_rows as (
    select
        stream.person_id,
        stream.sequence_number,
        stream.occurred_at,
        stream.source,
        stream.activity,
        stream.channel,
        stream.anonymous_id,
        stream.session_key,
        stream.journey_number,
        stream.activity_occurrence,
        stream.occurred_at < suffixes.from_occurred_at
        or (stream.occurred_at = suffixes.from_occurred_at and stream.source_rank < suffixes.from_source_rank)
        or (
            stream.occurred_at = suffixes.from_occurred_at
            and stream.source_rank = suffixes.from_source_rank
            and stream.event_key < suffixes.from_event_key
        ) as in_prefix
    from journeys.customer_stream as stream
    inner join suffixes on suffixes.person_id = stream.person_id
),

prefix as (
    select * from old_rows where in_prefix
),

last_rows as (
    select prefix.person_id, prefix.sequence_number, prefix.occurred_at, prefix.activity, prefix.channel, prefix.journey_number
    from prefix
    inner join (select person_id, max(sequence_number) as last_sequence from prefix group by person_id) as lasts
        on lasts.person_id = prefix.person_id and lasts.last_sequence = prefix.sequence_number
),

events as (
    -- every staged column the final rows copy is read here, once: joining staging.events again on
    -- event_key at the end built the join's table on the side of all events (10M events, one day's
    -- 147,068 continued persons: 10.4-11.7 s against 5.6-6.8 s)
    select
        staged.event_key,
        staged.source,
        staged.activity,
        staged.channel,
        staged.occurred_at,
        staged.anonymous_id,
        staged.touchpoint_type,
        staged.touchpoint,
        staged.campaign_source,
        staged.campaign_medium,
        staged.campaign_name,
        staged.campaign_term,
        staged.campaign_content,
        staged.revenue,
        staged.currency,
        staged.session_id,
        staged.order_id,
        case when staged.attributes like '%"score"%' then try_cast(json_extract_string(staged.attributes, '$.score') as double) end as score,
        persons.person_id,
        persons.person_rule,
        coalesce(ranks.source_rank, 99) as source_rank,
        suffixes.from_occurred_at,
        suffixes.from_source_rank,
        suffixes.from_event_key
    from staging.events as staged
    inner join journeys.event_persons as persons on persons.event_key = staged.event_key
    inner join suffixes on suffixes.person_id = persons.person_id
    left join journeys.source_ranks as ranks on ranks.source = staged.source
    -- one bound for all persons, the earliest first new event of any continued person: DuckDB
    -- skips the blocks of staging.events (stored about in delivery order) that end before it. Each
    -- person's own bound is left to suffix_events: as a join condition here (as it was), it gave
    -- the optimizer an inequality between staging.events and the suffixes to join by, which it
    -- chose when session 28 bound this earliest time as a value, and that join's spill filled the
    -- disk. With the bound a subquery and no such condition, DuckDB joins by event key, then by
    -- person (10M events, one day's 147,068 continued persons, the SELECT alone, read-only,
    -- alternating: 3.6-4.9 s -> 2.4-3.4 s; 534K of staging.events' 9.9M rows read; the same rows)
    where staged.occurred_at >= (select min(from_occurred_at) from suffixes)
),

suffix_events as (
    select
        event_key, source, activity, channel, occurred_at, anonymous_id, person_id, person_rule, source_rank,
        touchpoint_type, touchpoint, campaign_source, campaign_medium, campaign_name, campaign_term, campaign_content,
        revenue, currency, session_id, order_id, score
    from events
    where occurred_at > from_occurred_at
        or (occurred_at = from_occurred_at and source_rank > from_source_rank)
        or (occurred_at = from_occurred_at and source_rank = from_source_rank and event_key >= from_event_key)
),

activity_seeds as (
    -- each activity's count in the prefix, for the activities the suffix holds only: the prefix rows
    -- of other activities are left out before grouping, not after (10M events, one day's 147,068
    -- continued persons: grouping every prefix row made 1.79M groups of 4.39M rows; the statement
    -- alone, four runs each alternating, the first (cold, 6.53 s) left out: 3.74-4.20 s -> 2.90-3.68 s;
    -- the same rows)
    select prefix.person_id, prefix.activity, max(prefix.activity_occurrence) as last_occurrence
    from prefix
    where exists (
        select 1 from suffix_events
        where suffix_events.person_id = prefix.person_id and suffix_events.activity is not distinct from prefix.activity
    )
    group by prefix.person_id, prefix.activity
),

numbered as (
    select
        suffix_events.*,
        row_number() over (partition by person_id order by occurred_at, source_rank, event_key) as suffix_number,
        lag(occurred_at) over (partition by person_id order by occurred_at, source_rank, event_key) as lag_occurred_at,
        lag(activity) over (partition by person_id order by occurred_at, source_rank, event_key) as lag_activity,
        lag(channel) over (partition by person_id order by occurred_at, source_rank, event_key) as lag_channel,
        lead(channel) over (partition by person_id order by occurred_at, source_rank, event_key) as next_channel
    from suffix_events
),

ordered as (
    select
        numbered.event_key,
        numbered.source,
        numbered.activity,
        numbered.channel,
        numbered.occurred_at,
        numbered.anonymous_id,
        numbered.person_id,
        numbered.person_rule,
        numbered.source_rank,
        numbered.touchpoint_type,
        numbered.touchpoint,
        numbered.campaign_source,
        numbered.campaign_medium,
        numbered.campaign_name,
        numbered.campaign_term,
        numbered.campaign_content,
        numbered.revenue,
        numbered.currency,
        numbered.session_id,
        numbered.order_id,
        numbered.score,
        numbered.next_channel,
        coalesce(last_rows.sequence_number, 0) + numbered.suffix_number as sequence_number,
        coalesce(last_rows.journey_number, 0) as prefix_journeys,
        case when numbered.suffix_number = 1 then last_rows.occurred_at else numbered.lag_occurred_at end as previous_occurred_at,
        case when numbered.suffix_number = 1 then last_rows.activity else numbered.lag_activity end as previous_activity,
        case when numbered.suffix_number = 1 then last_rows.channel else numbered.lag_channel end as previous_channel
    from numbered
    left join last_rows on last_rows.person_id = numbered.person_id
),

web_events as (
    select
        event_key,
        person_id,
        coalesce(anonymous_id, '') as device,
        occurred_at,
        sequence_number,
        row_number() over (partition by person_id, coalesce(anonymous_id, '') order by sequence_number) as device_number,
        lag(occurred_at) over (partition by person_id, coalesce(anonymous_id, '') order by sequence_number) as lag_on_device
    from ordered
    where source = 'web'
),

prefix_web as (
    -- the prefix's web events on the devices the suffix continues on
    select
        prefix.person_id,
        coalesce(prefix.anonymous_id, '') as device,
        prefix.occurred_at,
        prefix.sequence_number,
        prefix.session_key,
        lag(prefix.occurred_at) over (
            partition by prefix.person_id, coalesce(prefix.anonymous_id, '') order by prefix.sequence_number
        ) as previous_on_device
    from prefix
    inner join (select distinct person_id, device from web_events) as devices
        on devices.person_id = prefix.person_id and devices.device = coalesce(prefix.anonymous_id, '')
    where prefix.source = 'web'
),

device_seeds as (
    -- each such device's last prefix web event: its time, its visit's start and its session
    select
        prefix_web.person_id,
        prefix_web.device,
        prefix_web.occurred_at as last_occurred_at,
        prefix_web.session_key as last_session_key,
        visit_starts.visit_started_at
    from prefix_web
    inner join (
        select
            person_id,
            device,
            max(sequence_number) as last_sequence,
            max(
                case
                    when previous_on_device is null then occurred_at
                    when epoch(occurred_at) - epoch(previous_on_device) > $session_gap_seconds then occurred_at
                end
            ) as visit_started_at
        from prefix_web
        group by person_id, device
    ) as visit_starts
        on visit_starts.person_id = prefix_web.person_id
        and visit_starts.device = prefix_web.device
        and visit_starts.last_sequence = prefix_web.sequence_number
),

visit_starts as (
    select
        web_events.event_key,
        web_events.person_id,
        web_events.device,
        web_events.occurred_at,
        web_events.sequence_number,
        device_seeds.visit_started_at as seed_visit_started_at,
        device_seeds.last_session_key as seed_session_key,
        floor((epoch(device_seeds.last_occurred_at) - epoch(device_seeds.visit_started_at)) / $max_session_seconds) as seed_part,
        case
            when web_events.device_number = 1 and device_seeds.last_occurred_at is null then 1
            when web_events.device_number = 1
                and epoch(web_events.occurred_at) - epoch(device_seeds.last_occurred_at) > $session_gap_seconds then 1
            when web_events.device_number > 1
                and epoch(web_events.occurred_at) - epoch(web_events.lag_on_device) > $session_gap_seconds then 1
            else 0
        end as starts_visit
    from web_events
    left join device_seeds on device_seeds.person_id = web_events.person_id and device_seeds.device = web_events.device
),

visits as (
    -- visit 0 is the prefix's visit continued; its start is the prefix's
    select
        visit_starts.*,
        sum(starts_visit) over (
            partition by person_id, device order by sequence_number rows between unbounded preceding and current row
        ) as visit_number,
        max(case when starts_visit = 1 then occurred_at end) over (
            partition by person_id, device order by sequence_number rows between unbounded preceding and current row
        ) as new_visit_started_at
    from visit_starts
),

visit_parts as (
    select
        visits.*,
        floor(
            (epoch(occurred_at) - epoch(case when visit_number = 0 then seed_visit_started_at else new_visit_started_at end))
            / $max_session_seconds
        ) as visit_part
    from visits
),

sessions as (
    select
        event_key,
        case
            when visit_number = 0 and visit_part = seed_part then seed_session_key
            else 'session:' || first_value(event_key) over (
                partition by person_id, device, visit_number, visit_part order by sequence_number
            )
        end as session_key
    from visit_parts
),

journey_starts as (
    select
        ordered.*,
        case
            when previous_occurred_at is null then 1
            when purchases.activity is not null then 1
            when epoch(occurred_at) - epoch(previous_occurred_at) > $journey_gap_seconds then 1
            else 0
        end as starts_journey
    from ordered
    left join journeys.purchase_activities as purchases on purchases.activity = ordered.previous_activity
),

journey_numbers as (
    select
        journey_starts.*,
        prefix_journeys + cast(sum(starts_journey) over (
            partition by person_id order by sequence_number rows between unbounded preceding and current row
        ) as bigint) as journey_number,
        row_number() over (partition by person_id, activity order by sequence_number) as suffix_occurrence,
        lead(occurred_at) over (partition by person_id, activity order by sequence_number) as activity_repeated_at
    from journey_starts
),

final as (
    select
        journey_numbers.person_id,
        journey_numbers.person_rule,
        journey_numbers.sequence_number,
        journey_numbers.event_key,
        journey_numbers.occurred_at,
        journey_numbers.source,
        journey_numbers.source_rank,
        journey_numbers.activity,
        journey_numbers.channel,
        journey_numbers.touchpoint_type,
        journey_numbers.touchpoint,
        journey_numbers.campaign_source,
        journey_numbers.campaign_medium,
        journey_numbers.campaign_name,
        journey_numbers.campaign_term,
        journey_numbers.campaign_content,
        journey_numbers.revenue,
        journey_numbers.currency,
        journey_numbers.previous_channel,
        journey_numbers.next_channel,
        coalesce(activity_seeds.last_occurrence, 0) + journey_numbers.suffix_occurrence as activity_occurrence,
        journey_numbers.activity_repeated_at,
        sessions.session_key,
        journey_numbers.session_id as source_session_id,
        journey_numbers.person_id || ':' || cast(journey_numbers.journey_number as varchar) as journey_id,
        journey_numbers.journey_number,
        journey_numbers.starts_journey = 1 as is_journey_start,
        journey_numbers.anonymous_id,
        journey_numbers.order_id,
        journey_numbers.score
    from journey_numbers
    left join sessions on sessions.event_key = journey_numbers.event_key
    left join activity_seeds
        on activity_seeds.person_id = journey_numbers.person_id and activity_seeds.activity is not distinct from journey_numbers.activity
)

select * from final

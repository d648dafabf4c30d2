-- One row per staged event, with its person, in each person's total order: the cross-channel
-- customer stream (ActivitySchema's activity stream).
--
-- Order (docs/journeys.md): occurred_at, then source_rank (setting journeys.source_rank: web 1,
-- email 2, crm 3, store 4), then event_key -- a total order, the same on every run.
-- sequence_number numbers a person's events in that order; previous_channel / next_channel are the
-- neighbours' channels; activity_occurrence numbers a person's events of one activity and
-- activity_repeated_at is when that activity happens next (ActivitySchema).
-- Web sessions: a person's web events on one device (anonymous_id) form a session until
-- $session_gap_seconds pass without an event; a session longer than $max_session_seconds is cut
-- into parts of that length from its start. session_key = 'session:' + the first event's key;
-- source_session_id keeps the source's own session id (Snowplow domain_sessionid) beside it.
-- Journeys: a journey starts at a person's first event, at the first event after a purchase
-- (journeys.purchase_activities), or after more than $journey_gap_seconds without an event; a
-- purchase ends its journey. journey_id = person_id + ':' + journey_number.
-- An incremental run ($all_persons false) builds the streams of journeys.rebuild_persons only: the
-- persons built again whole; steps/stream_suffix.sql continues the streams of the others
-- (docs/performance.md, "Incremental runs").
-- Columns: the stream's own (person, order, neighbours, occurrences, session, journey) and the
-- event fields journey analysis reads (time, source, activity, channel, touchpoint, campaign,
-- revenue, device, source session, order, and score: attributes.score as a number, null where the
-- attributes have none or it is not a number, what stage rules bound). An event's identifiers
-- (user_id, contact_id, email_hash, phone_hash, loyalty_id), its page and referrer URLs, its
-- attributes JSON and its lineage (source_format, _source_file, _source_row, _delivery_date) stay
-- in staging.events, joined by event_key: copying the identifiers too cost about 3.5 of the
-- stream's 26 s at 10M events; the page URL and attributes, about 3 of 46 s and a fifth of the
-- blocks written (docs/journeys.md, docs/performance.md).
-- The windows run over the few columns they need; the event's own fields (its time, source, activity
-- and channel included) join back at the end by event_key, so that the later window passes do not
-- carry them through their sorts. Only the first pass sorts by the order's three keys; the later
-- passes (activities, devices, sessions, journeys) order by its sequence_number, the same order
-- within a person as one integer key (10M events: 20.5 -> 18.3 s). A session's key comes from the
-- visit pass (the key of the latest visit start so far), so only the rare later parts of visits
-- longer than $max_session_seconds need a window of their own (10M events, 5.9M web events: nine
-- alternating read-only runs, median 34.7 -> 33.4 s; a small gain, 6 of the 9 pairs faster).
with events as (
    select
        staged.event_key,
        staged.source,
        staged.activity,
        staged.channel,
        staged.occurred_at,
        staged.anonymous_id,
        persons.person_id,
        persons.person_rule,
        coalesce(ranks.source_rank, 99) as source_rank
    from staging.events as staged
    inner join journeys.event_persons as persons on persons.event_key = staged.event_key
    left join journeys.source_ranks as ranks on ranks.source = staged.source
    where ($all_persons or persons.person_id in (select person_id from journeys.rebuild_persons))
        -- the build's part, a range of person ids ($part_from up to $part_to; null: no bound on that
        -- side, both null in a one-part build, warehouse.build_in_parts): a person's stream lies in
        -- one part. A range, not the person id's hash: DuckDB filters the persons' scan by it
        -- cheaply, where hashing every event's person id cost each part about 1.8 s at 10M events
        -- (10M forced into 7 parts, session 45, six alternating pairs: medians 49.3 s by hash,
        -- 36.4 s by range)
        and ($part_from is null or persons.person_id >= $part_from)
        and ($part_to is null or persons.person_id < $part_to)
),

ordered as (
    select
        events.*,
        row_number() over (partition by person_id order by occurred_at, source_rank, event_key) as sequence_number,
        lag(occurred_at) over (partition by person_id order by occurred_at, source_rank, event_key) as previous_occurred_at,
        lag(activity) over (partition by person_id order by occurred_at, source_rank, event_key) as previous_activity,
        lag(channel) over (partition by person_id order by occurred_at, source_rank, event_key) as previous_channel,
        lead(channel) over (partition by person_id order by occurred_at, source_rank, event_key) as next_channel
    from events
),

web_events as (
    select
        event_key,
        person_id,
        coalesce(anonymous_id, '') as device,
        occurred_at,
        sequence_number,
        lag(occurred_at) over (partition by person_id, coalesce(anonymous_id, '') order by sequence_number) as previous_on_device
    from ordered
    where source = 'web'
),

visit_starts as (
    select
        web_events.*,
        case
            when previous_on_device is null then 1
            when epoch(occurred_at) - epoch(previous_on_device) > $session_gap_seconds then 1
            else 0
        end as starts_visit
    from web_events
),

visits as (
    -- the visit's start time is the latest visit start so far: one window pass gives both
    select
        visit_starts.*,
        sum(starts_visit) over (
            partition by person_id, device order by sequence_number rows between unbounded preceding and current row
        ) as visit_number,
        max(case when starts_visit = 1 then occurred_at end) over (
            partition by person_id, device order by sequence_number rows between unbounded preceding and current row
        ) as visit_started_at,
        last_value(case when starts_visit = 1 then event_key end ignore nulls) over (
            partition by person_id, device order by sequence_number rows between unbounded preceding and current row
        ) as visit_first_key
    from visit_starts
),

visit_parts as (
    select
        visits.*,
        floor((epoch(occurred_at) - epoch(visit_started_at)) / $max_session_seconds) as visit_part
    from visits
),

sessions as (
    -- a visit's first part starts at the visit's first event; a later part (a visit longer than
    -- $max_session_seconds) at its own first event, found by a window over those rare rows only
    select event_key, 'session:' || visit_first_key as session_key
    from visit_parts
    where visit_part = 0
    union all
    select
        event_key,
        'session:' || first_value(event_key) over (
            partition by person_id, device, visit_number, visit_part order by sequence_number
        ) as session_key
    from visit_parts
    where visit_part > 0
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
        cast(sum(starts_journey) over (
            partition by person_id order by sequence_number rows between unbounded preceding and current row
        ) as bigint) as journey_number,
        row_number() over (partition by person_id, activity order by sequence_number) as activity_occurrence,
        lead(occurred_at) over (partition by person_id, activity order by sequence_number) as activity_repeated_at
    from journey_starts
),

staged_fields as (
    -- the score is taken before the join, so that the attributes do not go into its hash table
    select
        event_key,
        occurred_at,
        source,
        activity,
        channel,
        touchpoint_type,
        touchpoint,
        campaign_source,
        campaign_medium,
        campaign_name,
        campaign_term,
        campaign_content,
        revenue,
        currency,
        session_id,
        anonymous_id,
        order_id,
        case when attributes like '%"score"%' then try_cast(json_extract_string(attributes, '$.score') as double) end as score
    from staging.events
),

final as (
    select
        journey_numbers.person_id,
        journey_numbers.person_rule,
        journey_numbers.sequence_number,
        journey_numbers.event_key,
        staged.occurred_at,
        staged.source,
        journey_numbers.source_rank,
        staged.activity,
        staged.channel,
        staged.touchpoint_type,
        staged.touchpoint,
        staged.campaign_source,
        staged.campaign_medium,
        staged.campaign_name,
        staged.campaign_term,
        staged.campaign_content,
        staged.revenue,
        staged.currency,
        journey_numbers.previous_channel,
        journey_numbers.next_channel,
        journey_numbers.activity_occurrence,
        journey_numbers.activity_repeated_at,
        sessions.session_key,
        staged.session_id as source_session_id,
        journey_numbers.person_id || ':' || cast(journey_numbers.journey_number as varchar) as journey_id,
        journey_numbers.journey_number,
        journey_numbers.starts_journey = 1 as is_journey_start,
        staged.anonymous_id,
        staged.order_id,
        staged.score
    from journey_numbers
    inner join staged_fields as staged on staged.event_key = journey_numbers.event_key
    left join sessions on sessions.event_key = journey_numbers.event_key
)

select * from final

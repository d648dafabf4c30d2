-- One row per customer-facing event from every source, duplicates removed: the canonical
-- event stream (ActivitySchema-like) that identity resolution and journeys build on.
--
-- * web, email, CRM activities and deals: the staged rows, minus staging.duplicate_rows.
-- * store receipts: the lines of one transaction_id x transaction_type at one store become one
--   event -- completed_order (sale), returned_order (return) or voided_order (void) -- at the
--   receipt's earliest line time in UTC (staging.store_times); revenue = sum(quantity x
--   unit_price), negative for a return, added as decimals rounded to 12 places (exact: the same
--   lines give the same value in any order); the receipt's first line is its lineage.
-- * store visits: one event per visit at its UTC time, activity from setting store.visit_activities.
-- * CRM contact snapshots (staging.contact_versions): created_contact at created_at;
--   entered_lifecycle_stage when a version's lifecycle_stage differs from the version before
--   (or on the first version), at the version's updated_at (else the delivery date);
--   deleted_contact when a version is the first one marked deleted.
-- Every column is described in docs/events.md. occurred_at is UTC.
-- An incremental build ($all_events false) writes the web, e-mail and CRM activity and deal events
-- of staging.events_scope only (steps/events_scope.sql: the keys with a copy in a slice delivered
-- again since the last build), every store event and the lifecycle events of the contacts whose
-- snapshot rows a delivery wrote or removed since then (staging.changed_contacts: any other
-- contact has the same rows, so the same versions and events), of which only those whose rows
-- changed are then written (steps/derived_changes.sql; derived events are told apart by source
-- 'store' and source_format 'crm_contacts'); docs/performance.md, "Incremental runs".
with event_rows as (
    select 'stg_web__events' as staged_table, * from staging.stg_web__events
    union all
    select 'stg_email__events' as staged_table, * from staging.stg_email__events
    union all
    select 'stg_crm__activities' as staged_table, * from staging.stg_crm__activities
    union all
    select 'stg_crm__deals' as staged_table, * from staging.stg_crm__deals
),

source_events as (
    select
        event_rows.event_key,
        event_rows.source,
        event_rows.source_format,
        event_rows.activity,
        event_rows.channel,
        event_rows.occurred_at,
        event_rows.anonymous_id,
        event_rows.user_id,
        event_rows.contact_id,
        event_rows.email_hash,
        event_rows.phone_hash,
        event_rows.loyalty_id,
        event_rows.session_id,
        event_rows.order_id,
        event_rows.campaign_source,
        event_rows.campaign_medium,
        event_rows.campaign_name,
        event_rows.campaign_term,
        event_rows.campaign_content,
        event_rows.touchpoint_type,
        event_rows.touchpoint,
        event_rows.page_url,
        event_rows.referrer_url,
        event_rows.revenue,
        event_rows.currency,
        event_rows.attributes,
        event_rows._source_file,
        event_rows._source_row,
        event_rows._delivery_date
    from event_rows
    left join staging.duplicate_rows as duplicates
        on duplicates.staged_table = event_rows.staged_table
        and duplicates._source_file = event_rows._source_file
        and duplicates._source_row = event_rows._source_row
    where duplicates.dedupe_key is null
        and ($all_events or event_rows.event_key in (select event_key from staging.events_scope))
),

receipt_lines as (
    select
        lines.*,
        times.occurred_at,
        times.timezone as effective_timezone,
        files.source_format,
        row_number() over (
            partition by lines.store_id, lines.transaction_id, lines.transaction_type
            order by lines._source_file, lines._source_row
        ) as line_rank
    from staging.stg_store__transactions as lines
    inner join staging.store_times as times
        on times.staged_table = 'stg_store__transactions'
        and times._source_file = lines._source_file
        and times._source_row = lines._source_row
    left join raw.landed_files as files
        on files._source_file = lines._source_file
),

receipts as (
    select
        store_id,
        transaction_id,
        transaction_type,
        min(occurred_at) as occurred_at,
        min(loyalty_id) as loyalty_id,
        min(email_hash) as email_hash,
        min(phone_hash) as phone_hash,
        min(currency) as currency,
        min(effective_timezone) as timezone,
        -- summed as decimals: exact, so the same lines give the same bits whatever order the
        -- engine adds them in (a double sum may differ in its last bits between runs)
        cast(sum(cast(quantity * unit_price as decimal(38, 12))) as double) as revenue,
        cast(sum(cast(quantity as decimal(38, 12))) as double) as quantity,
        count(*) as line_count,
        count(distinct sku) as distinct_skus,
        min(case when line_rank = 1 then source_format end) as source_format,
        min(case when line_rank = 1 then _source_file end) as _source_file,
        min(case when line_rank = 1 then _source_row end) as _source_row,
        min(case when line_rank = 1 then _delivery_date end) as _delivery_date
    from receipt_lines
    group by store_id, transaction_id, transaction_type
),

receipt_events as (
    select
        'store:' || store_id || ':' || transaction_id || ':' || transaction_type as event_key,
        'store' as source,
        source_format,
        case transaction_type
            when 'sale' then 'completed_order'
            when 'return' then 'returned_order'
            else 'voided_order'
        end as activity,
        'store' as channel,
        occurred_at,
        cast(null as varchar) as user_id,
        cast(null as varchar) as contact_id,
        email_hash,
        phone_hash,
        loyalty_id,
        transaction_id as order_id,
        'store' as touchpoint_type,
        store_id as touchpoint,
        revenue,
        currency,
        cast(json_object(
            'transaction_type', transaction_type, 'line_count', line_count, 'distinct_skus', distinct_skus,
            'quantity', quantity, 'timezone', timezone
        ) as varchar) as attributes,
        _source_file,
        _source_row,
        _delivery_date
    from receipts
),

visit_events as (
    select
        'store:' || visits.store_id || ':visit:' || visits.visit_id as event_key,
        'store' as source,
        files.source_format,
        visits.activity,
        'store' as channel,
        times.occurred_at,
        cast(null as varchar) as user_id,
        cast(null as varchar) as contact_id,
        cast(null as varchar) as email_hash,
        cast(null as varchar) as phone_hash,
        visits.loyalty_id,
        cast(null as varchar) as order_id,
        'store' as touchpoint_type,
        visits.store_id as touchpoint,
        cast(null as double) as revenue,
        cast(null as varchar) as currency,
        visits.attributes,
        visits._source_file,
        visits._source_row,
        visits._delivery_date
    from staging.stg_store__visits as visits
    inner join staging.store_times as times
        on times.staged_table = 'stg_store__visits'
        and times._source_file = visits._source_file
        and times._source_row = visits._source_row
    left join raw.landed_files as files
        on files._source_file = visits._source_file
),

contact_changes as (
    select
        versions.*,
        case
            when lifecycle_stage is null then false
            when version_number = 1 then true
            when previous_lifecycle_stage is null then true
            else lifecycle_stage <> previous_lifecycle_stage
        end as entered_stage,
        case
            when not is_deleted then false
            when version_number = 1 then true
            else not previous_is_deleted
        end as became_deleted,
        coalesce(updated_at, case when version_number = 1 then created_at end, cast(_delivery_date as timestamp)) as changed_at
    from staging.contact_versions as versions
    -- an incremental build: only the contacts whose snapshot rows changed (see the top)
    where $all_events or versions.contact_id in (select contact_id from staging.changed_contacts where reader = $reader)
),

contact_events as (
    select
        'crm:contact:' || contact_id || ':created' as event_key,
        'created_contact' as activity,
        created_at as occurred_at,
        cast(json_object('lifecycle_stage', lifecycle_stage, 'country', country) as varchar) as event_attributes,
        contact_changes.*
    from contact_changes
    where version_number = 1 and created_at is not null
    union all
    select
        'crm:contact:' || contact_id || ':lifecycle:' || lifecycle_stage || ':' || cast(changed_at as varchar) as event_key,
        'entered_lifecycle_stage' as activity,
        changed_at as occurred_at,
        cast(json_object('lifecycle_stage', lifecycle_stage, 'previous_lifecycle_stage', previous_lifecycle_stage) as varchar) as event_attributes,
        contact_changes.*
    from contact_changes
    where entered_stage
    union all
    select
        'crm:contact:' || contact_id || ':deleted:' || cast(changed_at as varchar) as event_key,
        'deleted_contact' as activity,
        changed_at as occurred_at,
        cast(json_object('lifecycle_stage', lifecycle_stage) as varchar) as event_attributes,
        contact_changes.*
    from contact_changes
    where became_deleted
),

lifecycle_events as (
    select
        event_key,
        'crm' as source,
        'crm_contacts' as source_format,
        activity,
        'crm' as channel,
        occurred_at,
        user_id,
        contact_id,
        email_hash,
        phone_hash,
        loyalty_id,
        cast(null as varchar) as order_id,
        'lifecycle_stage' as touchpoint_type,
        lifecycle_stage as touchpoint,
        cast(null as double) as revenue,
        cast(null as varchar) as currency,
        event_attributes as attributes,
        _source_file,
        _source_row,
        _delivery_date
    from contact_events
),

-- events derived from store and contact tables: the columns web events alone have are empty
derived_events as (
    select * from receipt_events
    union all
    select * from visit_events
    union all
    select * from lifecycle_events
),

derived_in_event_layout as (
    select
        event_key,
        source,
        source_format,
        activity,
        channel,
        occurred_at,
        cast(null as varchar) as anonymous_id,
        user_id,
        contact_id,
        email_hash,
        phone_hash,
        loyalty_id,
        cast(null as varchar) as session_id,
        order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        cast(null as varchar) as campaign_term,
        cast(null as varchar) as campaign_content,
        touchpoint_type,
        touchpoint,
        cast(null as varchar) as page_url,
        cast(null as varchar) as referrer_url,
        revenue,
        currency,
        attributes,
        _source_file,
        _source_row,
        _delivery_date
    from derived_events
),

final as (
    select * from source_events
    union all
    select * from derived_in_event_layout
)

select * from final

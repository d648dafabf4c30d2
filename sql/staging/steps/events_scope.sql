-- The events an incremental build of staging.events writes again (docs/performance.md,
-- "Incremental runs"): every event key with a staged row in a slice (source x delivery date) that
-- ingestion wrote since the last build (staging.slice_changes), and every event the last build
-- kept from such a slice -- of the web, e-mail and CRM activity and deal tables. An event's row is
-- its kept copy (staging.duplicate_rows: the first received of its key's copies, across every
-- delivery), so a key with no copy in a written slice, before or after, keeps its row. Events
-- derived from store and CRM contact tables are worked out again every time, and written where
-- their rows changed (steps/derived_changes.sql).
with written as (
    select distinct source, delivery_date from staging.slice_changes where reader = $reader
),

staged_keys as (
    select event_key, source, _delivery_date from staging.stg_web__events
    union all
    select event_key, source, _delivery_date from staging.stg_email__events
    union all
    select event_key, source, _delivery_date from staging.stg_crm__activities
    union all
    select event_key, source, _delivery_date from staging.stg_crm__deals
),

final as (
    select staged_keys.event_key
    from staged_keys
    inner join written on written.source = staged_keys.source and written.delivery_date = staged_keys._delivery_date
    union
    select events.event_key
    from staging.events as events
    inner join written on written.source = events.source and written.delivery_date = events._delivery_date
    where events.source <> 'store' and events.source_format <> 'crm_contacts'
)

select * from final

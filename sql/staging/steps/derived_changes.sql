-- The derived events an incremental build of staging.events writes again or removes
-- (docs/performance.md, "Incremental runs"). Derived events -- store receipts and visits (source
-- 'store') and CRM lifecycle events (source_format 'crm_contacts') -- depend on more than their own
-- row (a receipt on all its lines, an event time on its store's time zone, a lifecycle event on the
-- contact's earlier versions), so each build works out again every store event and the lifecycle
-- events of the contacts whose snapshot rows changed (staging.changed_contacts; staging.events_rebuilt
-- holds them) and compares them with the last build's rows: a key is changed when only one
-- side has it or any column differs (`is distinct from`: two nulls are equal). Only those are
-- written and logged for the readers; the others keep their rows (10M events, one day: 625 of
-- 801,764 derived events, 351 new and 274 receipts whose rows changed). Event keys are unique (a check of every run), so the join pairs
-- one row with one row. Every column of staging.events is compared
-- (tests/sql/test_incremental.py checks the list).
with rebuilt as (
    select * from staging.events_rebuilt
    where source = 'store' or source_format = 'crm_contacts'
),

kept as (
    -- the lifecycle events worked out again are those of staging.changed_contacts' contacts only
    select * from staging.events
    where source = 'store'
        or (source_format = 'crm_contacts' and contact_id in (select contact_id from staging.changed_contacts where reader = $reader))
),

final as (
    select coalesce(rebuilt.event_key, kept.event_key) as event_key
    from rebuilt
    full outer join kept on kept.event_key = rebuilt.event_key
    where rebuilt.event_key is null
        or kept.event_key is null
        or rebuilt.source is distinct from kept.source
        or rebuilt.source_format is distinct from kept.source_format
        or rebuilt.activity is distinct from kept.activity
        or rebuilt.channel is distinct from kept.channel
        or rebuilt.occurred_at is distinct from kept.occurred_at
        or rebuilt.anonymous_id is distinct from kept.anonymous_id
        or rebuilt.user_id is distinct from kept.user_id
        or rebuilt.contact_id is distinct from kept.contact_id
        or rebuilt.email_hash is distinct from kept.email_hash
        or rebuilt.phone_hash is distinct from kept.phone_hash
        or rebuilt.loyalty_id is distinct from kept.loyalty_id
        or rebuilt.session_id is distinct from kept.session_id
        or rebuilt.order_id is distinct from kept.order_id
        or rebuilt.campaign_source is distinct from kept.campaign_source
        or rebuilt.campaign_medium is distinct from kept.campaign_medium
        or rebuilt.campaign_name is distinct from kept.campaign_name
        or rebuilt.campaign_term is distinct from kept.campaign_term
        or rebuilt.campaign_content is distinct from kept.campaign_content
        or rebuilt.touchpoint_type is distinct from kept.touchpoint_type
        or rebuilt.touchpoint is distinct from kept.touchpoint
        or rebuilt.page_url is distinct from kept.page_url
        or rebuilt.referrer_url is distinct from kept.referrer_url
        or rebuilt.revenue is distinct from kept.revenue
        or rebuilt.currency is distinct from kept.currency
        or rebuilt.attributes is distinct from kept.attributes
        or rebuilt._source_file is distinct from kept._source_file
        or rebuilt._source_row is distinct from kept._source_row
        or rebuilt._delivery_date is distinct from kept._delivery_date
)

select * from final

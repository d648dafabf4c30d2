-- The records identities are read from (a view, identity.records): every staged event, and every
-- CRM contact version as a record of its own (key `crm:contact_version:<contact>:<version>`,
-- source crm, at valid_from). `fingerprint` hashes what identity reads from a record -- its
-- source, time and six identifier columns -- so an incremental run finds the records that
-- changed since the last identity build by comparing fingerprints (steps/changed_records.sql).
-- DuckDB's hash() is 64 bits wide: two different records hash alike with odds of about 1 in
-- 1.8 x 10^19. (sqlglot writes it for Spark as HASH, which is 32 bits: use XXHASH64 there.)
with events as (
    select event_key, source, occurred_at, anonymous_id, user_id, contact_id, email_hash, phone_hash, loyalty_id
    from staging.events
),

contact_versions as (
    select
        'crm:contact_version:' || contact_id || ':' || cast(version_number as varchar) as event_key,
        'crm' as source,
        valid_from as occurred_at,
        cast(null as varchar) as anonymous_id,
        user_id,
        contact_id,
        email_hash,
        phone_hash,
        loyalty_id
    from staging.contact_versions
),

records as (
    select * from events
    union all
    select * from contact_versions
),

final as (
    select
        *,
        hash(source, occurred_at, anonymous_id, user_id, contact_id, email_hash, phone_hash, loyalty_id) as fingerprint
    from records
)

select * from final

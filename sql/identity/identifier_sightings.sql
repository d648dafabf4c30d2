-- One row per identifier seen on an event or a CRM contact version (event_key x identifier).
--
-- Identifiers are typed values: anonymous_id (device/cookie), user_id (login), contact_id (CRM),
-- email (salted hash), phone (salted hash), loyalty_id. An identifier's text is
-- `<type>:<value>`, so equal values of different types never meet (the value is not kept in a column
-- of its own: it is the text after the first colon, as identity.identity_map shows it). Values on the blocklist
-- (identity.blocked_identifiers: empty, null, 0, -1, anonymous, test addresses ...) are left out
-- here and listed in identity.link_decisions. Records are staged events and CRM contact versions
-- (identity.records, sql/identity/steps/records.sql); an incremental run builds the sightings of
-- the records that changed only ($all_records false: identity.changed_records).
with records as (
    select event_key, source, occurred_at, anonymous_id, user_id, contact_id, email_hash, phone_hash, loyalty_id
    from identity.records
    where $all_records or event_key in (select event_key from identity.changed_records)
),

sightings as (
    select event_key, source, occurred_at, 'anonymous_id' as identifier_type, anonymous_id as identifier_value from records where anonymous_id is not null
    union all
    select event_key, source, occurred_at, 'user_id' as identifier_type, user_id as identifier_value from records where user_id is not null
    union all
    select event_key, source, occurred_at, 'contact_id' as identifier_type, contact_id as identifier_value from records where contact_id is not null
    union all
    select event_key, source, occurred_at, 'email' as identifier_type, email_hash as identifier_value from records where email_hash is not null
    union all
    select event_key, source, occurred_at, 'phone' as identifier_type, phone_hash as identifier_value from records where phone_hash is not null
    union all
    select event_key, source, occurred_at, 'loyalty_id' as identifier_type, loyalty_id as identifier_value from records where loyalty_id is not null
),

final as (
    select
        sightings.event_key,
        sightings.source,
        sightings.occurred_at,
        sightings.identifier_type,
        sightings.identifier_type || ':' || sightings.identifier_value as identifier
    from sightings
    left join identity.blocked_identifiers as blocked
        on blocked.identifier_type = sightings.identifier_type
        and blocked.identifier_value = lower(trim(sightings.identifier_value))
    where blocked.identifier_type is null
)

select * from final

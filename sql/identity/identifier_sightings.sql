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
-- Each branch reads identity.records itself rather than a shared `records` CTE: DuckDB materialises
-- a CTE read more than once, and copies all 10.3M records before the six branches read them
-- (10M events: the SELECT into memory 10.1 -> 3.2 s; into the warehouse file, where writing the
-- 18M rows is most of the cost, 10.2-13.3 -> 9.7-9.9 s, three alternating runs).
with sightings as (
    select event_key, source, occurred_at, 'anonymous_id' as identifier_type, anonymous_id as identifier_value
    from identity.records
    where anonymous_id is not null and ($all_records or event_key in (select event_key from identity.changed_records))
    union all
    select event_key, source, occurred_at, 'user_id' as identifier_type, user_id as identifier_value
    from identity.records
    where user_id is not null and ($all_records or event_key in (select event_key from identity.changed_records))
    union all
    select event_key, source, occurred_at, 'contact_id' as identifier_type, contact_id as identifier_value
    from identity.records
    where contact_id is not null and ($all_records or event_key in (select event_key from identity.changed_records))
    union all
    select event_key, source, occurred_at, 'email' as identifier_type, email_hash as identifier_value
    from identity.records
    where email_hash is not null and ($all_records or event_key in (select event_key from identity.changed_records))
    union all
    select event_key, source, occurred_at, 'phone' as identifier_type, phone_hash as identifier_value
    from identity.records
    where phone_hash is not null and ($all_records or event_key in (select event_key from identity.changed_records))
    union all
    select event_key, source, occurred_at, 'loyalty_id' as identifier_type, loyalty_id as identifier_value
    from identity.records
    where loyalty_id is not null and ($all_records or event_key in (select event_key from identity.changed_records))
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

-- Each record's identifiers (a view, identity.record_identifiers): one column
-- per identifier type, holding the identifier's text `<type>:<value>`, or null when the record has
-- no value of that type or its value is on the blocklist (lower(trim(value)) in
-- identity.blocked_identifiers for that type; an entry listed twice counts once). The sightings
-- (identifier_sightings.sql) and the links (identifier_links.sql) are both read from it, so the
-- two apply one rule. A record has at most one identifier of each type.
-- Of the records of this run (identity.record_scope, a view identity.py creates): every record of
-- identity.records in a whole build, only those of identity.changed_records in a daily run. The
-- scope is applied to the records themselves, before the blocklist lookups: as a filter on this
-- view's rows it was not pushed below them, and a daily run's sightings and links each looked up
-- every record (10M events, one day's 189,960 changed records, alternating inside one daily run:
-- 2.19-2.35 s each, against 0.49-0.52 s with the scope on the records; the same rows).
with records as (
    select event_key, source, occurred_at, anonymous_id, user_id, contact_id, email_hash, phone_hash, loyalty_id
    from identity.record_scope
),

blocked as (
    select identifier_type, identifier_value from identity.blocked_identifiers where identifier_value is not null
),

identified as (
    select
        event_key,
        source,
        occurred_at,
        case when lower(trim(anonymous_id)) not in (select identifier_value from blocked where identifier_type = 'anonymous_id') then 'anonymous_id:' || anonymous_id end as anonymous_id,
        case when lower(trim(user_id)) not in (select identifier_value from blocked where identifier_type = 'user_id') then 'user_id:' || user_id end as user_id,
        case when lower(trim(contact_id)) not in (select identifier_value from blocked where identifier_type = 'contact_id') then 'contact_id:' || contact_id end as contact_id,
        case when lower(trim(email_hash)) not in (select identifier_value from blocked where identifier_type = 'email') then 'email:' || email_hash end as email,
        case when lower(trim(phone_hash)) not in (select identifier_value from blocked where identifier_type = 'phone') then 'phone:' || phone_hash end as phone,
        case when lower(trim(loyalty_id)) not in (select identifier_value from blocked where identifier_type = 'loyalty_id') then 'loyalty_id:' || loyalty_id end as loyalty_id
    from records
)

select * from identified

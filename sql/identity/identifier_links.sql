-- One row per pair of identifiers seen together on one event or contact version, with its
-- evidence: the event key, source and time, and the rule that makes it a link.
--
-- Rules: crm_contact_record (identifiers on one CRM contact), web_login (device and login id on
-- one web event), email_click_landing (device and the `cid` contact id of an email landing page),
-- email_recipient (SendGrid address and contact id), store_receipt (loyalty card, e-receipt email
-- or phone on one receipt), same_event otherwise. left_identifier < right_identifier. An
-- incremental run builds the links of the records that changed only ($all_records false).
--
-- The links of a record are the pairs of its sightings (identifier_sightings.sql): its identifier
-- columns as `<type>:<value>` texts, a value on the blocklist (lower(trim(value)) in
-- identity.blocked_identifiers for its type) left out. They are worked out from each record's row
-- -- one row per pair of identifier types (15 pairs of 6 types; a record has at most one identifier
-- of each type), kept where both are set -- not by joining the sightings with themselves on the
-- record's key: no hash table of every sighting, so memory stays bounded at any size (the self-join
-- spilled 38,050 MiB at 100M events and had to be built in parts). Only records with two or more
-- identifier columns set can have a pair. 10M events, the whole table (11,242,148 links, identical
-- rows), alternating, the statement into the warehouse file: 16.8-20.1 s by the self-join against
-- 10.9-12.6 s; most of what is left is writing the rows.
with records as (
    select event_key, source, occurred_at, anonymous_id, user_id, contact_id, email_hash, phone_hash, loyalty_id
    from identity.records
    where ($all_records or event_key in (select event_key from identity.changed_records))
        and (case when anonymous_id is null then 0 else 1 end + case when user_id is null then 0 else 1 end
            + case when contact_id is null then 0 else 1 end + case when email_hash is null then 0 else 1 end
            + case when phone_hash is null then 0 else 1 end + case when loyalty_id is null then 0 else 1 end) >= 2
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
),

type_pairs as (
    select * from (values
        ('anonymous_id', 'user_id'), ('anonymous_id', 'contact_id'), ('anonymous_id', 'email'), ('anonymous_id', 'phone'), ('anonymous_id', 'loyalty_id'),
        ('user_id', 'contact_id'), ('user_id', 'email'), ('user_id', 'phone'), ('user_id', 'loyalty_id'),
        ('contact_id', 'email'), ('contact_id', 'phone'), ('contact_id', 'loyalty_id'),
        ('email', 'phone'), ('email', 'loyalty_id'),
        ('phone', 'loyalty_id')
    ) as pairs (first_type, second_type)
),

pairs as (
    select
        identified.event_key,
        identified.source,
        identified.occurred_at,
        type_pairs.first_type,
        type_pairs.second_type,
        case type_pairs.first_type
            when 'anonymous_id' then identified.anonymous_id
            when 'user_id' then identified.user_id
            when 'contact_id' then identified.contact_id
            when 'email' then identified.email
            else identified.phone
        end as first_identifier,
        case type_pairs.second_type
            when 'user_id' then identified.user_id
            when 'contact_id' then identified.contact_id
            when 'email' then identified.email
            when 'phone' then identified.phone
            else identified.loyalty_id
        end as second_identifier
    from identified
    cross join type_pairs
),

final as (
    select
        least(first_identifier, second_identifier) as left_identifier,
        greatest(first_identifier, second_identifier) as right_identifier,
        case when first_identifier < second_identifier then first_type else second_type end as left_type,
        case when first_identifier < second_identifier then second_type else first_type end as right_type,
        event_key,
        source,
        occurred_at,
        case
            when event_key like 'crm:contact_version:%' then 'crm_contact_record'
            when source = 'web' and (first_type = 'contact_id' or second_type = 'contact_id') then 'email_click_landing'
            when source = 'web' then 'web_login'
            when source = 'email' then 'email_recipient'
            when source = 'store' then 'store_receipt'
            else 'same_event'
        end as rule
    from pairs
    where first_identifier is not null and second_identifier is not null
)

select * from final

-- One row per pair of identifiers seen together on one event or contact version, with its
-- evidence: the event key, source and time, and the rule that makes it a link.
--
-- Rules: crm_contact_record (identifiers on one CRM contact), web_login (device and login id on
-- one web event), email_click_landing (device and the `cid` contact id of an email landing page),
-- email_recipient (SendGrid address and contact id), store_receipt (loyalty card, e-receipt email
-- or phone on one receipt), same_event otherwise. left_identifier < right_identifier. An
-- incremental run builds the links of the records that changed only (identity.record_identifiers
-- holds only those then: identity.record_scope).
--
-- The links of a record are the pairs of its sightings (identifier_sightings.sql), worked out from
-- its row of identity.record_identifiers (its identifiers' texts, blocklisted values left out):
-- one row per pair of identifier types (15 pairs of 6 types; a record has at most one identifier
-- of each type), kept where both are set. Only records with two or more identifiers are paired.
-- The sightings are not joined with themselves on the record's key: that needed a hash table of
-- every sighting (at 100M events it spilled 38,050 MiB and had to be built in parts); this keeps
-- memory bounded at any size. 10M events, the whole table (11,242,148 links, identical rows), the
-- statement into the warehouse file, alternating in one process: 16.7-20.1 s by the self-join
-- against 10.9-12.6 s; in whole builds 17.4 and 20.6 s against 10.2 s. Most of what is left is
-- writing the rows.
with identified as (
    select * from identity.record_identifiers
    where (case when anonymous_id is null then 0 else 1 end + case when user_id is null then 0 else 1 end
            + case when contact_id is null then 0 else 1 end + case when email is null then 0 else 1 end
            + case when phone is null then 0 else 1 end + case when loyalty_id is null then 0 else 1 end) >= 2
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

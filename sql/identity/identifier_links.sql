-- One row per pair of identifiers seen together on one event or contact version, with its
-- evidence: the event key, source and time, and the rule that makes it a link.
--
-- Rules: crm_contact_record (identifiers on one CRM contact), web_login (device and login id on
-- one web event), email_click_landing (device and the `cid` contact id of an email landing page),
-- email_recipient (SendGrid address and contact id), store_receipt (loyalty card, e-receipt email
-- or phone on one receipt), same_event otherwise. left_identifier < right_identifier. An
-- incremental run builds the links of the records that changed only ($all_records false).
-- Parts: the links of part $part of $parts, the events whose key hashes to it (a pair's two
-- sightings share an event, so each pair lies in one part). identity.py builds a large graph in
-- parts, so that the self-join's hash table fits in memory: whole, at 100M events (181M
-- sightings), it spilled 38,050 MiB and ran out of disk. The remainder is kept non-negative for engines
-- whose hash is signed. `$parts = 1 or` drops the filter from a one-part build (every 10M build,
-- and every incremental run), where DuckDB would estimate that almost no sightings pass it and
-- plan the self-join for that. 10M events, lab, alternating: the whole build written 12.5-15.2 s
-- against 17.4-18.0 s with the filter; a daily run's links (in the pipeline) 1.2 s against 6.2 s.
with sightings as (
    select * from identity.identifier_sightings
    where ($all_records or event_key in (select event_key from identity.changed_records))
        and ($parts = 1 or (hash(event_key) % $parts + $parts) % $parts = $part)
),

pairs as (
    select
        a.identifier as left_identifier,
        b.identifier as right_identifier,
        a.identifier_type as left_type,
        b.identifier_type as right_type,
        a.event_key,
        a.source,
        a.occurred_at
    from sightings as a
    inner join sightings as b
        on a.event_key = b.event_key
        and a.identifier < b.identifier
),

final as (
    select
        left_identifier,
        right_identifier,
        left_type,
        right_type,
        event_key,
        source,
        occurred_at,
        case
            when event_key like 'crm:contact_version:%' then 'crm_contact_record'
            when source = 'web' and (left_type = 'contact_id' or right_type = 'contact_id') then 'email_click_landing'
            when source = 'web' then 'web_login'
            when source = 'email' then 'email_recipient'
            when source = 'store' then 'store_receipt'
            else 'same_event'
        end as rule
    from pairs
)

select * from final

-- The records (identity.records: staged events and CRM contact versions) whose identity inputs
-- changed since the last identity build: a record that appeared (fingerprint set, no previous
-- one), disappeared (fingerprint null) or whose source, time or identifiers changed (the
-- fingerprints differ). Every other record has the same sightings and links as last time, so an
-- incremental run updates the sightings and links of these records only.
with current_records as (
    select event_key, fingerprint from identity.records
),

compared as (
    select
        coalesce(current_records.event_key, previous.event_key) as event_key,
        current_records.fingerprint
    from current_records
    full outer join identity.record_fingerprints as previous on previous.event_key = current_records.event_key
    where current_records.fingerprint is distinct from previous.fingerprint
)

select * from compared

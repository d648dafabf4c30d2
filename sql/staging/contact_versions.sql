-- One row per distinct version of a CRM contact (contact snapshot rows, duplicates removed).
--
-- contacts*.csv files are snapshots; a row repeated unchanged in a later snapshot is a duplicate
-- (staging.duplicate_rows), so what remains are the versions. Versions are ordered by the CRM's
-- `updated_at` (or, where it is empty, the delivery date), then delivery date, file and row:
-- version_number 1 is the oldest. `previous_lifecycle_stage` / `previous_is_deleted` are the
-- values of the version before, from which the lifecycle events in staging.events are derived.
-- An incremental build ($all_contacts false) builds the versions of only the contacts whose
-- snapshot rows a delivery wrote or removed since the last build (staging.changed_contacts): any
-- other contact has the same rows, and the same copies among them (a copy has the same values,
-- the contact among them), so the same versions (docs/performance.md, "Incremental runs").
with contact_rows as (
    select contacts.*
    from staging.stg_crm__contacts as contacts
    left join staging.duplicate_rows as duplicates
        on duplicates.staged_table = 'stg_crm__contacts'
        and duplicates._source_file = contacts._source_file
        and duplicates._source_row = contacts._source_row
    where duplicates.dedupe_key is null
        and ($all_contacts or contacts.contact_id in (select contact_id from staging.changed_contacts where reader = $reader))
),

ordered as (
    select
        contact_id,
        email_hash,
        phone_hash,
        user_id,
        loyalty_id,
        lifecycle_stage,
        country,
        created_at,
        updated_at,
        is_deleted,
        attributes,
        _delivery_date,
        _source_file,
        _source_row,
        coalesce(updated_at, cast(_delivery_date as timestamp)) as valid_from,
        row_number() over (
            partition by contact_id
            order by coalesce(updated_at, cast(_delivery_date as timestamp)), _delivery_date, _source_file, _source_row
        ) as version_number
    from contact_rows
),

final as (
    select
        ordered.*,
        lag(lifecycle_stage) over (partition by contact_id order by version_number) as previous_lifecycle_stage,
        lag(is_deleted) over (partition by contact_id order by version_number) as previous_is_deleted,
        count(*) over (partition by contact_id) as version_count
    from ordered
)

select * from final

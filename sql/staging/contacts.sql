-- One row per CRM contact: its latest version (see staging.contact_versions for the order).
-- An incremental build ($all_contacts false) builds the rows of only the contacts whose snapshot
-- rows a delivery wrote or removed since the last build (staging.changed_contacts).
with versions as (
    select * from staging.contact_versions
    where $all_contacts or contact_id in (select contact_id from staging.changed_contacts where reader = $reader)
),

final as (
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
        version_count,
        _delivery_date,
        _source_file,
        _source_row
    from versions
    where version_number = version_count
)

select * from final

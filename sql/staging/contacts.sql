-- One row per CRM contact: its latest version (see staging.contact_versions for the order).
with versions as (
    select * from staging.contact_versions
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

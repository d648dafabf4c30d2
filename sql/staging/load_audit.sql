-- One row per landed file: what was read from it and where every row went.
--
-- Conservation (checked by Dagster on every run): rows_read = rows_staged + rows_quarantined +
-- rows_duplicate, where rows_staged counts the file's rows kept in its staging table,
-- rows_duplicate its rows removed as copies of a row kept elsewhere (staging.duplicate_rows) and
-- rows_quarantined its rows in quarantine.rejected_rows. A file that could not be read at all
-- has rows_read = 0 and its reason in quarantine.load_errors.
with staged_rows as (
    select _source_file, count(*) as row_count from staging.stg_web__events group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_email__events group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_crm__activities group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_crm__deals group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_crm__contacts group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_store__stores group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_store__transactions group by _source_file
    union all
    select _source_file, count(*) as row_count from staging.stg_store__visits group by _source_file
),

staged as (
    select _source_file, cast(sum(row_count) as bigint) as row_count from staged_rows group by _source_file
),

duplicates as (
    select _source_file, count(*) as row_count from staging.duplicate_rows group by _source_file
),

quarantined as (
    select _source_file, count(*) as row_count from quarantine.rejected_rows group by _source_file
),

errors as (
    select _source_file, count(*) as error_count, min(error) as first_error from quarantine.load_errors group by _source_file
),

final as (
    select
        files.source,
        files.entity,
        files.source_format,
        files._delivery_date,
        files._source_file,
        files.status,
        files.rows_read,
        coalesce(staged.row_count, 0) - coalesce(duplicates.row_count, 0) as rows_staged,
        coalesce(quarantined.row_count, 0) as rows_quarantined,
        coalesce(duplicates.row_count, 0) as rows_duplicate,
        coalesce(errors.error_count, 0) as load_errors,
        errors.first_error,
        files.rows_read = coalesce(staged.row_count, 0) + coalesce(quarantined.row_count, 0) as is_balanced
    from raw.landed_files as files
    left join staged on staged._source_file = files._source_file
    left join duplicates on duplicates._source_file = files._source_file
    left join quarantined on quarantined._source_file = files._source_file
    left join errors on errors._source_file = files._source_file
)

select * from final

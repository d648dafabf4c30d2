-- One row per de-duplicated store record (receipt line or visit), with its time in UTC.
--
-- Store exports write local wall-clock time without an offset. The zone is the record's own
-- `timezone` column if the export has one, else the store's (staging.stores), else
-- $default_timezone (setting store.default_timezone); `timezone_source` says which.
-- Daylight-saving changes (docs/time.md): a local time inside the repeated hour when clocks go
-- back matches two spans and takes the first reading (the offset before the change); a local
-- time inside the skipped hour when clocks go forward cannot have happened and is read with the
-- offset before the change, i.e. 01:30 on a spring-forward night in London becomes 01:30 UTC
-- (= 02:30 BST). Both cases take the larger of the candidate offsets.
with store_records as (
    select 'stg_store__transactions' as staged_table, store_id, occurred_at_local, timezone, _source_file, _source_row
    from staging.stg_store__transactions
    union all
    select 'stg_store__visits' as staged_table, store_id, occurred_at_local, timezone, _source_file, _source_row
    from staging.stg_store__visits
),

kept as (
    select store_records.*
    from store_records
    left join staging.duplicate_rows as duplicates
        on duplicates.staged_table = store_records.staged_table
        and duplicates._source_file = store_records._source_file
        and duplicates._source_row = store_records._source_row
    where duplicates.dedupe_key is null
),

zoned as (
    select
        kept.staged_table,
        kept._source_file,
        kept._source_row,
        kept.occurred_at_local,
        coalesce(kept.timezone, stores.timezone, $default_timezone) as timezone,
        case
            when kept.timezone is not null then 'record'
            when stores.timezone is not null then 'store'
            else 'default'
        end as timezone_source
    from kept
    left join staging.stores as stores on stores.store_id = kept.store_id
),

candidates as (
    select
        zoned.*,
        periods.utc_offset_seconds,
        row_number() over (
            partition by zoned.staged_table, zoned._source_file, zoned._source_row
            order by periods.utc_offset_seconds desc
        ) as candidate_rank
    from zoned
    left join staging.timezone_periods as periods
        on periods.timezone = zoned.timezone
        and periods.local_year = extract(year from zoned.occurred_at_local)
        and zoned.occurred_at_local >= periods.local_start
        and zoned.occurred_at_local < periods.local_end
),

final as (
    select
        staged_table,
        _source_file,
        _source_row,
        occurred_at_local,
        timezone,
        timezone_source,
        utc_offset_seconds,
        occurred_at_local - utc_offset_seconds * interval '1' second as occurred_at
    from candidates
    where candidate_rank = 1
)

select * from final

-- One row per staged input row removed as a duplicate, naming the copy that was kept.
--
-- Duplicate rule (docs/ingestion.md): two staged rows are copies when they share a key (the view
-- staging.keyed_rows, steps/keyed_rows.sql, which this model reads twice: the keys, then their rows) --
--   * event tables (web, email, CRM activities and deals): the source-prefixed event_key, across
--     every file and delivery (the same Segment messageId, Snowplow event_id, SendGrid
--     sg_event_id, CRM activity_id ...);
--   * other tables: the table and its natural row key (_row_key: a receipt line is
--     transaction_id:line_number, a visit its visit_id, a contact or store snapshot row all its values).
-- Of each group of copies the first received is kept: earliest _dedupe_at (the source's own
-- receive time where it has one, e.g. Snowplow's collector_tstamp), then earliest delivery date,
-- then file path, then row number -- a total order, so the choice never depends on load order.
--
-- A whole build ($all_keys) ranks every key with more than one copy. An incremental build ranks
-- only the keys whose copies may have changed since the last build (docs/performance.md,
-- "Incremental runs"): the keys with a staged row in a slice (source x delivery date) written
-- since then (staging.slice_changes) and the keys that had copies then (staging.duplicates_before).
-- Any other key has no row in a written slice, so its rows are some of the ones it had at the last
-- build, when it had no copies: it has none now. The table is written whole either way.
with written as (
    select distinct source, delivery_date from staging.slice_changes where reader = $reader
),

copied_keys as (
    -- only keys with more than one copy are ranked: one aggregate over every key instead of a
    -- window sort of every row. It groups the keys' hashes (numbers, cheaper to group than text);
    -- a hash two keys share only brings a few more keys to the exact ranking below, where a key
    -- without copies is its own first copy (so Spark's 32-bit HASH, which sqlglot writes for it,
    -- is as correct as DuckDB's 64-bit one, only letting more keys through)
    select hash(dedupe_key) as key_hash from staging.keyed_rows as keyed where $all_keys group by hash(dedupe_key) having count(*) > 1
    union all
    -- an incremental build's keys, hashed the same way
    select hash(keyed.dedupe_key) as key_hash
    from staging.keyed_rows as keyed
    inner join written on written.source = keyed.source and written.delivery_date = keyed._delivery_date
    where not $all_keys
    union all
    select hash(dedupe_key) as key_hash from staging.duplicates_before where not $all_keys
),

ranked as (
    select
        source,
        staged_table,
        dedupe_key,
        _delivery_date,
        _source_file,
        _source_row,
        row_number() over (
            partition by dedupe_key
            order by _dedupe_at asc nulls last, _delivery_date, _source_file, _source_row
        ) as copy_number,
        first_value(_source_file) over (
            partition by dedupe_key
            order by _dedupe_at asc nulls last, _delivery_date, _source_file, _source_row
        ) as kept_source_file,
        first_value(_source_row) over (
            partition by dedupe_key
            order by _dedupe_at asc nulls last, _delivery_date, _source_file, _source_row
        ) as kept_source_row
    from staging.keyed_rows as keyed
    where hash(dedupe_key) in (select key_hash from copied_keys)
),

final as (
    select
        source,
        staged_table,
        dedupe_key,
        _delivery_date,
        _source_file,
        _source_row,
        copy_number,
        kept_source_file,
        kept_source_row
    from ranked
    where copy_number > 1
)

select * from final

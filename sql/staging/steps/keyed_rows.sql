-- The view staging.keyed_rows: one row per staged input row of every staged table, with the key
-- its copies share (staging.duplicate_rows reads it; docs/ingestion.md, "Duplicates"):
--   * event tables (web, email, CRM activities and deals): the source-prefixed event_key;
--   * other tables: the table's name and its natural row key (_row_key), e.g.
--     'stg_store__transactions|T1:1' for line 1 of receipt T1.
-- With its lineage (_dedupe_at, _delivery_date, _source_file, _source_row), which orders the copies.
-- A view, not a CTE of duplicate_rows.sql: that model reads it twice (the keys with copies, then
-- their rows), and DuckDB materialises a CTE read twice -- every staged row with its file path, which
-- spilled at scale (docs/performance.md, "CTEs read twice"); each read of a view is planned on
-- its own, reading only the columns it needs.
select 'web' as source, 'stg_web__events' as staged_table, event_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_web__events
union all
select 'email' as source, 'stg_email__events' as staged_table, event_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_email__events
union all
select 'crm' as source, 'stg_crm__activities' as staged_table, event_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_crm__activities
union all
select 'crm' as source, 'stg_crm__deals' as staged_table, event_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_crm__deals
union all
select 'crm' as source, 'stg_crm__contacts' as staged_table, 'stg_crm__contacts|' || _row_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_crm__contacts
union all
select 'store' as source, 'stg_store__stores' as staged_table, 'stg_store__stores|' || _row_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_store__stores
union all
select 'store' as source, 'stg_store__transactions' as staged_table, 'stg_store__transactions|' || _row_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_store__transactions
union all
select 'store' as source, 'stg_store__visits' as staged_table, 'stg_store__visits|' || _row_key as dedupe_key, _dedupe_at, _delivery_date, _source_file, _source_row from staging.stg_store__visits

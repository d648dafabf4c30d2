-- One row per store: its latest description.
--
-- stores*.csv files are snapshots; for each store_id the row delivered last wins (latest
-- delivery date, then file path, then row number), so a store that moves region or corrects its
-- timezone takes the new values everywhere downstream.
with store_rows as (
    select store_id, name, region, timezone, attributes, _delivery_date, _source_file, _source_row
    from staging.stg_store__stores
),

ranked as (
    select
        store_rows.*,
        row_number() over (
            partition by store_id
            order by _delivery_date desc, _source_file desc, _source_row desc
        ) as recency_rank
    from store_rows
),

final as (
    select
        store_id,
        name as store_name,
        region,
        timezone,
        attributes,
        _delivery_date as described_on,
        _source_file,
        _source_row
    from ranked
    where recency_rank = 1
)

select * from final

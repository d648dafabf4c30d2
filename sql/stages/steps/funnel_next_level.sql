-- Level $level of the funnel (ClickHouse windowFunnel semantics, docs/funnels.md): an event of
-- stage $level (or a later stage, when skipped stages count) reaches the level if a chain reached
-- level $level - 1 at the same time or before it, and it comes at most $window_seconds after that
-- chain's start. Of the chains it could extend it takes the latest started (the most window left).
-- At the same instant, the earlier level is taken first: a tie counts as in order.
with previous as (
    select stage_model, unit_id, reached_at as happened_at, sequence_number, chain_start, 0 as kind
    from stages.funnel_levels
    where level = $level - 1
),

candidates as (
    select
        stage_model,
        case when $unit = 'person' then person_id else journey_id end as unit_id,
        occurred_at as happened_at,
        sequence_number,
        cast(null as timestamp) as chain_start,
        1 as kind
    from stages.event_stages
    where stage_index = $level or ($allow_skipped and stage_index > $level)
),

combined as (
    select * from previous
    union all
    select * from candidates
),

scanned as (
    select
        combined.*,
        max(chain_start) over (
            partition by stage_model, unit_id
            order by happened_at, kind, sequence_number
            rows between unbounded preceding and current row
        ) as best_start
    from combined
),

final as (
    select
        stage_model,
        unit_id,
        $level as level,
        happened_at as reached_at,
        sequence_number,
        best_start as chain_start
    from scanned
    where kind = 1
        and best_start is not null
        and epoch(happened_at) - epoch(best_start) <= $window_seconds
)

select * from final

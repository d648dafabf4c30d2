-- Level $level of the ordered funnel (ClickHouse windowFunnel semantics, docs/funnels.md): an event
-- of stage $level (or a later stage, when skipped stages count) reaches the level if a chain reached
-- level $level - 1 at the same time or before it, and it comes at most $window_seconds after that
-- chain's start. Of the chains it could extend it takes the latest started (the most window left).
-- At the same instant, the earlier level is taken first: a tie counts as in order.
--
-- A chain belongs to the unit its first event belongs to, but may continue with any later event of
-- the same person inside the window: a journey that ends at its purchase still reaches retention
-- when the person buys again within the window of the journey's chain.
--
-- An incremental run ($all_persons false) extends only the chains of journeys.stream_scope's
-- persons started at or after their chain_cut_epoch (steps/funnel_scope.sql; the older ones are
-- kept), with those persons' stage events at or after it.
with previous as (
    select levels.stage_model, levels.unit_id, levels.person_id, levels.reached_at as happened_at, levels.sequence_number,
        levels.chain_start, 0 as kind
    from stages.funnel_levels as levels
    left join journeys.stream_scope as scope on scope.person_id = levels.person_id
    where levels.level = $level - 1
        and (
            $all_persons
            or (scope.person_id is not null and (scope.chain_cut_epoch is null or epoch(levels.chain_start) >= scope.chain_cut_epoch))
        )
),

spans as (
    select stage_model, unit_id, person_id, min(chain_start) as first_start, max(chain_start) as last_start
    from previous
    group by stage_model, unit_id, person_id
),

candidates as (
    select
        spans.stage_model,
        spans.unit_id,
        spans.person_id,
        staged.occurred_at as happened_at,
        staged.sequence_number,
        cast(null as timestamp) as chain_start,
        1 as kind
    from stages.event_stages as staged
    inner join spans
        on spans.stage_model = staged.stage_model
        and spans.person_id = staged.person_id
        and staged.occurred_at >= spans.first_start
        and epoch(staged.occurred_at) <= epoch(spans.last_start) + $window_seconds
    where staged.stage_index = $level or ($allow_skipped and staged.stage_index > $level)
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
        person_id,
        cast($level as bigint) as level,
        happened_at as reached_at,
        sequence_number,
        best_start as chain_start
    from scanned
    where kind = 1
        and best_start is not null
        and epoch(happened_at) - epoch(best_start) <= $window_seconds
)

select * from final

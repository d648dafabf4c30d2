-- What an incremental run of stages.funnel_levels (order mode 'ordered') builds again, per person
-- of journeys.stream_scope (whose stream rows changed from from_sequence_number on;
-- docs/performance.md, "Incremental runs"): the chains started at or after chain_cut_epoch, the
-- first changed event's time less $window_seconds, read from the person's stage events at or after
-- that time. A chain started earlier ends its window before the first changed event, so its rows
-- read only unchanged events and stay; a chain started later can only have been extended by chains
-- started later still (a level takes the latest started chain), all of them rebuilt. A person built
-- again whole (from_sequence_number 1, or no longer in the stream) has a null cut: every chain.
select
    scope.person_id,
    scope.from_sequence_number,
    scope.read_from_sequence_number,
    case when scope.from_sequence_number > 1 then epoch(stream.occurred_at) - $window_seconds end as chain_cut_epoch
from journeys.stream_scope as scope
left join journeys.customer_stream as stream
    on stream.person_id = scope.person_id and stream.sequence_number = scope.from_sequence_number

-- The distinct identifier pairs of identity.identifier_links, each with its evidence: the rule
-- (the smallest of its links' rules), how many links (records) show it, and when it was first and
-- last seen. Every identity step that reads links by pair reads these rows (identity.link_pairs, a
-- work table of one run), instead of grouping the evidence again each: the shared-identifier guard
-- (steps/shared_identifiers.sql), the usable links (steps/usable_links.sql, once per guard round),
-- the refused links, the region's leak check (steps/region_leaks.sql) and link_decisions.sql.
-- 10M events: 11.5M links, 2.68M pairs.
-- A whole run ($whole_graph) holds every pair. An incremental run holds the pairs with an end in
-- identity.region (the identifiers resolved again: what the guards and components read) and the
-- pairs of identity.redecided_pairs (the links of the records that changed: only their evidence
-- can change) -- the pairs link_decisions decides again (docs/performance.md, "Incremental runs").
-- Grouped by the two identifiers alone: an identifier's text is `<type>:<value>`
-- (identifier_sightings.sql), so its type is the text before the first colon, taken after the
-- grouping rather than carried as two more group keys (or as a min() of text, slower still).
-- At 100M events, where this hash aggregate spilled: 115M links of a 10M warehouse copied ten
-- times (session 49, two alternating rounds, the same 26.8M rows by count and checksum) 82.2-85.7 s
-- with 8.9-9.4 GiB spilled before, 68.1-71.0 s with 3.5-3.8 GiB now; at 10M (three rounds, the
-- first of each cold) 3.15-5.03 s before, 2.89-3.40 s now, nothing spilled.
select
    left_identifier,
    right_identifier,
    split_part(left_identifier, ':', 1) as left_type,
    split_part(right_identifier, ':', 1) as right_type,
    rule,
    evidence_count,
    first_seen_at,
    last_seen_at
from (
    select
        left_identifier,
        right_identifier,
        min(rule) as rule,
        count(*) as evidence_count,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at
    from identity.identifier_links as evidence
    where $whole_graph
        or left_identifier in (select identifier from identity.region)
        or right_identifier in (select identifier from identity.region)
        or exists (
            select 1 from identity.redecided_pairs as pairs
            where pairs.left_identifier = evidence.left_identifier and pairs.right_identifier = evidence.right_identifier
        )
    group by left_identifier, right_identifier
) as pairs

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
select
    left_identifier,
    right_identifier,
    left_type,
    right_type,
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
group by left_identifier, right_identifier, left_type, right_type

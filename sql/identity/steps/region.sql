-- The identifiers an incremental run decides again (docs/performance.md, "Incremental runs"):
-- every identifier of the link components (identity.link_components: components of the links
-- left after the shared-identifier guard) that hold an identifier touched by new data or a
-- neighbour of one. Touched: an endpoint of a distinct link that appeared or disappeared, or an
-- identifier that appeared or disappeared. Neighbours count over the old and the new links, so
-- an identifier whose refusal may lapse brings its neighbours' components along. Everything the
-- guards and the components decide for an identifier depends only on its own link component and
-- the links touching it, so outside this region nothing can change. Only the links and
-- identifiers of the records that changed (their sightings and links before and after the update:
-- identity.sightings_before / sightings_rebuilt, links_before / links_rebuilt) can have appeared or
-- disappeared, so only those are compared with the last build's (link_decisions, identity_map).
-- The links are read from link_decisions (one row per distinct pair of the last build, with its
-- evidence count) and the changed records' links, not from the 11M rows of identifier_links
-- (10M events, one day, the same 11,873 identifiers: 3.4-4.3 s before, 1.8-1.9 s now; read-only,
-- alternating runs).
with candidate_links as (
    select left_identifier, right_identifier from identity.links_before
    union
    select left_identifier, right_identifier from identity.links_rebuilt
),

previous_links as (
    select decisions.left_identifier, decisions.right_identifier, decisions.evidence_count
    from identity.link_decisions as decisions
    inner join candidate_links as candidates
        on candidates.left_identifier = decisions.left_identifier and candidates.right_identifier = decisions.right_identifier
),

rows_before as (
    select left_identifier, right_identifier, count(*) as link_rows from identity.links_before group by left_identifier, right_identifier
),

current_links as (
    -- a candidate pair is linked now by a changed record's new links, or by a record that did not
    -- change: the pair had more evidence last time (link_decisions.evidence_count, its rows in
    -- identifier_links then) than the changed records' old links gave it
    select left_identifier, right_identifier from identity.links_rebuilt
    union
    select previous_links.left_identifier, previous_links.right_identifier
    from previous_links
    left join rows_before
        on rows_before.left_identifier = previous_links.left_identifier and rows_before.right_identifier = previous_links.right_identifier
    where previous_links.evidence_count > coalesce(rows_before.link_rows, 0)
),

changed_links as (
    select * from (select * from current_links except select left_identifier, right_identifier from previous_links) as added
    union
    select * from (select left_identifier, right_identifier from previous_links except select * from current_links) as removed
),

candidate_identifiers as (
    select identifier from identity.sightings_before
    union
    select identifier from identity.sightings_rebuilt
),

current_identifiers as (
    select distinct sightings.identifier
    from identity.identifier_sightings as sightings
    inner join candidate_identifiers as candidates on candidates.identifier = sightings.identifier
),

previous_identifiers as (
    select mapped.identifier
    from identity.identity_map as mapped
    inner join candidate_identifiers as candidates on candidates.identifier = mapped.identifier
),

changed_identifiers as (
    select * from (select * from current_identifiers except select * from previous_identifiers) as added
    union
    select * from (select * from previous_identifiers except select * from current_identifiers) as removed
),

touched as (
    select left_identifier as identifier from changed_links
    union
    select right_identifier as identifier from changed_links
    union
    select identifier from changed_identifiers
),

touching_links as (
    -- the links now and last time: a pair linked now was linked last time (link_decisions) or
    -- appeared, and both ends of a pair that appeared are touched already
    select left_identifier, right_identifier from identity.link_decisions
    where left_identifier in (select identifier from touched) or right_identifier in (select identifier from touched)
),

expanded as (
    select identifier from touched
    union
    select touching_links.right_identifier as identifier from touching_links inner join touched on touched.identifier = touching_links.left_identifier
    union
    select touching_links.left_identifier as identifier from touching_links inner join touched on touched.identifier = touching_links.right_identifier
),

hit_components as (
    select distinct components.link_component
    from identity.link_components as components
    inner join expanded on expanded.identifier = components.identifier
),

final as (
    select identifier from expanded
    union
    select components.identifier
    from identity.link_components as components
    inner join hit_components on hit_components.link_component = components.link_component
)

select * from final

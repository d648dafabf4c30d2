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
with candidate_links as (
    select left_identifier, right_identifier from identity.links_before
    union
    select left_identifier, right_identifier from identity.links_rebuilt
),

current_links as (
    select distinct links.left_identifier, links.right_identifier
    from identity.identifier_links as links
    inner join candidate_links as candidates
        on candidates.left_identifier = links.left_identifier and candidates.right_identifier = links.right_identifier
),

previous_links as (
    select decisions.left_identifier, decisions.right_identifier
    from identity.link_decisions as decisions
    inner join candidate_links as candidates
        on candidates.left_identifier = decisions.left_identifier and candidates.right_identifier = decisions.right_identifier
),

changed_links as (
    select * from (select * from current_links except select * from previous_links) as added
    union
    select * from (select * from previous_links except select * from current_links) as removed
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
    select left_identifier, right_identifier from identity.identifier_links
    where left_identifier in (select identifier from touched) or right_identifier in (select identifier from touched)
    union
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

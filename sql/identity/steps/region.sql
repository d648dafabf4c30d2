-- The identifiers an incremental run decides again (docs/performance.md, "Incremental runs"):
-- every identifier of the link components (identity.link_components: components of the links
-- left after the shared-identifier guard) that hold an identifier touched by new data or a
-- neighbour of one. Touched: an endpoint of a distinct link that appeared or disappeared, or an
-- identifier that appeared or disappeared. Neighbours count over the old and the new links, so
-- an identifier whose refusal may lapse brings its neighbours' components along. Everything the
-- guards and the components decide for an identifier depends only on its own link component and
-- the links touching it, so outside this region nothing can change.
with current_links as (
    select distinct left_identifier, right_identifier from identity.identifier_links
),

previous_links as (
    select left_identifier, right_identifier from identity.link_decisions
),

changed_links as (
    select * from (select * from current_links except select * from previous_links) as added
    union
    select * from (select * from previous_links except select * from current_links) as removed
),

current_identifiers as (
    select distinct identifier from identity.identifier_sightings
),

previous_identifiers as (
    select identifier from identity.identity_map
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

all_links as (
    select * from current_links
    union
    select * from previous_links
),

expanded as (
    select identifier from touched
    union
    select all_links.right_identifier as identifier from all_links inner join touched on touched.identifier = all_links.left_identifier
    union
    select all_links.left_identifier as identifier from all_links inner join touched on touched.identifier = all_links.right_identifier
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

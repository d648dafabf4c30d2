-- One integer node per identifier (sightings and usable links), numbered in identifier order.
-- An incremental run ($whole_graph false) numbers the identifiers of identity.region only.
with identifiers as (
    select identifier, identifier_type from identity.identifier_sightings
    where $whole_graph or identifier in (select identifier from identity.region)
    union
    select left_identifier as identifier, left_type as identifier_type from identity.usable_links
    union
    select right_identifier as identifier, right_type as identifier_type from identity.usable_links
),

final as (
    select identifier, identifier_type, row_number() over (order by identifier) as node from identifiers
)

select * from final

-- Distinct identifier pairs that may merge persons: links minus refused identifiers and links.
-- An incremental run ($whole_graph false) keeps the links inside identity.region.
with region as (
    select identifier from identity.region
),

links as (
    -- the distinct pairs (steps/link_pairs.sql)
    select left_identifier, right_identifier, left_type, right_type
    from identity.link_pairs
    where $whole_graph
        or (left_identifier in (select identifier from region) and right_identifier in (select identifier from region))
),

final as (
    select links.left_identifier, links.right_identifier, links.left_type, links.right_type
    from links
    left join identity.refused_identifiers as refused_left on refused_left.identifier = links.left_identifier
    left join identity.refused_identifiers as refused_right on refused_right.identifier = links.right_identifier
    left join identity.refused_links as refused
        on refused.left_identifier = links.left_identifier and refused.right_identifier = links.right_identifier
    where refused_left.identifier is null and refused_right.identifier is null and refused.left_identifier is null
)

select * from final

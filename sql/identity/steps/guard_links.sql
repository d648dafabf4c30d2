-- The usable links a guard round computes components of: those inside the over-limit components
-- (identity.guard_nodes; a link's ends lie in one component) that the round's refusals leave.
with links as (
    select links.left_identifier, links.right_identifier, links.left_type, links.right_type
    from identity.usable_links as links
    inner join identity.guard_nodes as nodes on nodes.identifier = links.left_identifier
),

final as (
    select links.left_identifier, links.right_identifier, links.left_type, links.right_type
    from links
    left join identity.refused_identifiers as refused_left
        on refused_left.identifier = links.left_identifier and refused_left.round = $round
    left join identity.refused_identifiers as refused_right
        on refused_right.identifier = links.right_identifier and refused_right.round = $round
    left join identity.refused_links as refused
        on refused.left_identifier = links.left_identifier and refused.right_identifier = links.right_identifier
        and refused.round = $round
    where refused_left.identifier is null and refused_right.identifier is null and refused.left_identifier is null
)

select * from final

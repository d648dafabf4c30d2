-- Every identifier with its component (the smallest node id of its component after the stars).
with nodes as (
    select identifier, identifier_type, node from identity.cc_nodes
),

roots as (
    select src as node, min(dst) as root from identity.cc_edges group by src
),

final as (
    select nodes.identifier, nodes.identifier_type, nodes.node, coalesce(roots.root, nodes.node) as component
    from nodes
    left join roots on roots.node = nodes.node
)

select * from final

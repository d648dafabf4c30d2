-- Large-star step of connected components (Kiveris et al., 2014): every node links all its
-- larger neighbours to the smallest node of its neighbourhood. One row per directed edge.
with adjacency as (
    select src as node, dst as neighbour from identity.cc_edges
    union
    select dst as node, src as neighbour from identity.cc_edges
),

smallest as (
    select node, least(node, min(neighbour)) as smallest_node from adjacency group by node
),

final as (
    select distinct adjacency.neighbour as src, smallest.smallest_node as dst
    from adjacency
    inner join smallest on smallest.node = adjacency.node
    where adjacency.neighbour > adjacency.node
)

select * from final

-- Small-star step: every node links itself and its smaller neighbours to the smallest of them.
with adjacency as (
    select src as node, dst as neighbour from identity.cc_edges
    union
    select dst as node, src as neighbour from identity.cc_edges
),

not_larger as (
    select node, neighbour from adjacency where neighbour <= node
    union
    select node, node as neighbour from adjacency
),

smallest as (
    select node, min(neighbour) as smallest_node from not_larger group by node
),

final as (
    select distinct not_larger.neighbour as src, smallest.smallest_node as dst
    from not_larger
    inner join smallest on smallest.node = not_larger.node
    where not_larger.neighbour <> smallest.smallest_node
)

select * from final

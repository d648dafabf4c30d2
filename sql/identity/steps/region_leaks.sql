-- Links with exactly one end inside identity.region that no refusal stops: none may exist, since
-- the region holds whole link components and the refusals outside it cannot change. A leak means
-- the region is wrong, and the run resolves the whole graph instead.
with region as (
    select identifier from identity.region
),

crossing as (
    select links.left_identifier, links.right_identifier
    from identity.link_pairs as links
    where (links.left_identifier in (select identifier from region)) <> (links.right_identifier in (select identifier from region))
)

select count(*) as leaks
from crossing
left join identity.refused_identifiers as refused_left on refused_left.identifier = crossing.left_identifier
left join identity.refused_identifiers as refused_right on refused_right.identifier = crossing.right_identifier
left join identity.refused_links as refused
    on refused.left_identifier = crossing.left_identifier and refused.right_identifier = crossing.right_identifier
where refused_left.identifier is null and refused_right.identifier is null and refused.left_identifier is null

-- Edges whose target is not a root yet (the components are stars when this is empty).
select count(*) as unfinished
from identity.cc_edges as e
inner join identity.cc_edges as f on f.src = e.dst

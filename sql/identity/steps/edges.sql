-- The usable links as integer edges for the star rounds.
select distinct l.node as src, r.node as dst
from identity.usable_links as links
inner join identity.cc_nodes as l on l.identifier = links.left_identifier
inner join identity.cc_nodes as r on r.identifier = links.right_identifier

-- The nodes a guard round computes components for again: the identifiers of the over-limit
-- components, with the node numbers of the first pass. Refusals fall only inside those components,
-- and taking links away only splits a component, so every other component is final; keeping the
-- numbers gives each new component the number (its smallest node) a pass over the whole graph
-- would give it.
select members.identifier, members.identifier_type, members.node
from identity.cc_components as members
inner join identity.over_limit as over on over.component = members.component

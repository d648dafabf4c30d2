-- Every identifier's link component (components of the links left after the shared-identifier
-- guard, before the over-limit guard), labelled by its smallest identifier so that a label does
-- not depend on how the nodes were numbered. Incremental runs find their region with it.
select
    identifier,
    min(identifier) over (partition by component) as link_component
from identity.cc_components

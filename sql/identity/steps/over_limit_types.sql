-- For each over-limit component, the identifier type that gives way this round: its
-- lowest-priority type without a per-person limit that still has a usable link (null when only
-- limited types link it: then its links between them give way). Each component is decided on its
-- own, so a component's guard rounds never depend on the rest of the graph.
with members as (
    select components.component, components.identifier, components.identifier_type
    from identity.cc_components as components
    inner join identity.over_limit as over on over.component = components.component
),

linking as (
    select members.component, members.identifier_type
    from members inner join identity.usable_links as links on links.left_identifier = members.identifier
    union
    select members.component, members.identifier_type
    from members inner join identity.usable_links as links on links.right_identifier = members.identifier
),

ranked as (
    select
        linking.component,
        linking.identifier_type,
        row_number() over (partition by linking.component order by types.priority desc) as pick
    from linking
    inner join identity.identifier_types as types on types.identifier_type = linking.identifier_type
    where types.max_per_person is null
),

final as (
    select over.component, ranked.identifier_type
    from identity.over_limit as over
    left join ranked on ranked.component = over.component and ranked.pick = 1
)

select * from final

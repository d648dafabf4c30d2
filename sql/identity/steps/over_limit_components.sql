-- Components holding more identifiers of a limited type than one person may (two CRM contacts,
-- two logins), with the lowest-priority unlimited type still linking inside them.
with members as (
    select components.component, components.identifier, types.identifier_type, types.priority, types.max_per_person
    from identity.cc_components as components
    inner join identity.identifier_types as types on types.identifier_type = components.identifier_type
),

violations as (
    select component
    from members
    where max_per_person is not null
    group by component, identifier_type, max_per_person
    having count(*) > max(max_per_person)
),

final as (
    select distinct members.component
    from members
    inner join violations on violations.component = members.component
)

select * from final

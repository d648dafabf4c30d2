-- One row per identifier: the person it belongs to.
--
-- A person is a connected component of the usable identifier links (identity.link_decisions).
-- person_id = 'p_' + the first 16 hex digits of md5(anchor), the anchor being the component's
-- highest-priority identifier (setting identity.priority: contact_id, user_id, email, phone,
-- loyalty_id, anonymous_id), ties broken by the identifier's text. A person's id therefore does
-- not change when unrelated data arrives. Refused identifiers (shared devices, family emails,
-- over-limit components) stand alone as their own person.
with members as (
    select components.identifier, components.identifier_type, components.component, types.priority
    from identity.cc_components as components
    inner join identity.identifier_types as types on types.identifier_type = components.identifier_type
),

ranked as (
    select
        members.*,
        row_number() over (partition by component order by priority, identifier) as anchor_rank
    from members
),

anchors as (
    select component, identifier as anchor_identifier from ranked where anchor_rank = 1
),

final as (
    select
        members.identifier,
        members.identifier_type,
        substr(members.identifier, length(members.identifier_type) + 2) as identifier_value,
        'p_' || substr(md5(anchors.anchor_identifier), 1, 16) as person_id,
        anchors.anchor_identifier,
        refused.rule as refused_rule
    from members
    inner join anchors on anchors.component = members.component
    left join identity.refused_identifiers as refused on refused.identifier = members.identifier
)

select * from final

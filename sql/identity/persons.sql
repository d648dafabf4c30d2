-- One row per person: how many identifiers of each type they hold.
-- An incremental run ($all_persons false) builds the persons of identity.region_map only (the
-- region's new map): a region holds whole link components, so each of those persons has every
-- identifier in it, and no person outside it changed (docs/performance.md, "Incremental runs").
with identity_map as (
    select * from identity.identity_map
    where $all_persons or person_id in (select person_id from identity.region_map)
),

final as (
    select
        person_id,
        min(anchor_identifier) as anchor_identifier,
        count(*) as identifiers,
        sum(case when identifier_type = 'contact_id' then 1 else 0 end) as contact_ids,
        sum(case when identifier_type = 'user_id' then 1 else 0 end) as user_ids,
        sum(case when identifier_type = 'email' then 1 else 0 end) as emails,
        sum(case when identifier_type = 'phone' then 1 else 0 end) as phones,
        sum(case when identifier_type = 'loyalty_id' then 1 else 0 end) as loyalty_ids,
        sum(case when identifier_type = 'anonymous_id' then 1 else 0 end) as anonymous_ids,
        min(case when identifier_type = 'contact_id' then identifier_value end) as contact_id,
        min(case when identifier_type = 'user_id' then identifier_value end) as user_id
    from identity_map
    group by person_id
)

select * from final

-- Person ids of the previous run that no longer exist, each with the id that now holds most of
-- its identifiers (ties: the smaller id). A merge maps the absorbed id to the survivor; a split
-- maps the old id to its largest part.
with previous as (
    select identifier, person_id as previous_person_id from identity.previous_identity_map
),

current_ids as (
    select distinct person_id from identity.identity_map
),

gone as (
    select distinct previous.previous_person_id
    from previous
    left join current_ids on current_ids.person_id = previous.previous_person_id
    where current_ids.person_id is null
),

moved as (
    select previous.previous_person_id, mapped.person_id, count(*) as identifiers_moved
    from previous
    inner join gone on gone.previous_person_id = previous.previous_person_id
    inner join identity.identity_map as mapped on mapped.identifier = previous.identifier
    group by previous.previous_person_id, mapped.person_id
),

ranked as (
    select moved.*, row_number() over (partition by previous_person_id order by identifiers_moved desc, person_id) as choice
    from moved
),

final as (
    select previous_person_id, person_id, identifiers_moved
    from ranked
    where choice = 1
)

select * from final

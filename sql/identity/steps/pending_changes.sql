-- What an incremental identity run changed, for journeys.event_persons to work out again:
-- identifiers whose person or refusal changed (kind 'identifier'), and every sighting
-- (event, identifier, time) that appeared or disappeared: its event (kind 'event') and its
-- identifier (kind 'sighted_identifier': it matters to the events of a refused identifier, whose
-- nearest identified event it may change). Only the records that changed can have changed
-- sightings: their sightings before (identity.sightings_before) and after (sightings_rebuilt).
with region as (
    select identifier from identity.region
),

previous_map as (
    select identifier, person_id, refused_rule from identity.previous_identity_map
    where identifier in (select identifier from region)
),

current_map as (
    select identifier, person_id, refused_rule from identity.identity_map
    where identifier in (select identifier from region)
),

changed_map as (
    select * from (select * from current_map except select * from previous_map) as added
    union
    select * from (select * from previous_map except select * from current_map) as removed
),

current_sightings as (
    select event_key, identifier, occurred_at from identity.sightings_rebuilt
),

previous_sightings as (
    select event_key, identifier, occurred_at from identity.sightings_before
),

changed_sightings as (
    select * from (select * from current_sightings except select * from previous_sightings) as added
    union
    select * from (select * from previous_sightings except select * from current_sightings) as removed
),

final as (
    select 'identifier' as kind, identifier as value from changed_map
    union
    select 'sighted_identifier' as kind, identifier as value from changed_sightings
    union
    select 'event' as kind, event_key as value from changed_sightings
)

select * from final

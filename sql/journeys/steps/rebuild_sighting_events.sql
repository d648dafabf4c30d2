-- The events whose sightings an incremental event_persons run reads: the events it decides, and
-- the events sharing a refused identifier with them (candidates of the nearest-identified-event rule).
with rebuild as (
    select event_key from journeys.rebuild_events
),

refused_identifiers as (
    select distinct sightings.identifier
    from identity.identifier_sightings as sightings
    inner join rebuild on rebuild.event_key = sightings.event_key
    inner join identity.identity_map as mapped on mapped.identifier = sightings.identifier
    where mapped.refused_rule is not null
),

final as (
    select event_key from rebuild
    union
    select sightings.event_key
    from identity.identifier_sightings as sightings
    inner join refused_identifiers on refused_identifiers.identifier = sightings.identifier
)

select * from final

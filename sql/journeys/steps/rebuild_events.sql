-- The events whose person an incremental run works out again (docs/performance.md):
-- events that appeared or disappeared, events whose sightings changed, events seen with an
-- identifier whose person or refusal changed, or with a refused identifier whose sightings changed
-- (identity.pending_changes), and -- for the nearest-identified-event rule -- every event sharing a
-- refused identifier with those. An event's person depends on its own identifiers' persons and
-- refusals, and, when all of them are refused, on the other events of those identifiers: so a
-- usable identifier gaining or losing a sighting changes nothing for its other events.
with changes as (
    select kind, value from identity.pending_changes
),

logged as (
    select event_key from staging.logged_events
),

appeared_or_gone as (
    -- one join of the two key columns, not two set differences (10M events: 1.3-1.6 s against
    -- 2.5-4.6 s); both hold each event once. Only an event staging.events logged since this model's
    -- last build (staging.logged_events) can have appeared or gone -- every event with $all_events.
    select coalesce(staged.event_key, known.event_key) as event_key
    from (
        select event_key from staging.events where $all_events or event_key in (select event_key from logged)
    ) as staged
    full outer join (
        select event_key from journeys.event_persons where $all_events or event_key in (select event_key from logged)
    ) as known on known.event_key = staged.event_key
    where staged.event_key is null or known.event_key is null
),

first_hop as (
    select event_key from appeared_or_gone
    union
    select value as event_key from changes where kind = 'event'
    union
    select sightings.event_key
    from identity.identifier_sightings as sightings
    inner join changes on changes.kind = 'identifier' and changes.value = sightings.identifier
    union
    select sightings.event_key
    from identity.identifier_sightings as sightings
    inner join changes on changes.kind = 'sighted_identifier' and changes.value = sightings.identifier
    inner join identity.identity_map as mapped on mapped.identifier = sightings.identifier
    where mapped.refused_rule is not null
),

refused_identifiers as (
    select distinct sightings.identifier
    from identity.identifier_sightings as sightings
    inner join first_hop on first_hop.event_key = sightings.event_key
    inner join identity.identity_map as mapped on mapped.identifier = sightings.identifier
    where mapped.refused_rule is not null
),

final as (
    select event_key from first_hop
    union
    select sightings.event_key
    from identity.identifier_sightings as sightings
    inner join refused_identifiers on refused_identifiers.identifier = sightings.identifier
)

select * from final

-- One row per staged event: the person it belongs to, and the rule that decided it.
--
-- Rules (docs/journeys.md), first that applies:
--   identifier               the person of the event's highest-priority usable identifier
--                            (setting identity.priority; ties by identifier text);
--   nearest_identified_event the event carries only refused identifiers (a shared device, a
--                            family email): the person of the nearest event in time on the same
--                            identifier that has a usable one -- not the last person to log in;
--                            ties: the earlier event, then the smaller event key;
--   refused_identifier       no such event: the refused identifier's own person;
--   no_identifier            the event has no identifier at all (an anonymous till receipt):
--                            a person of its own, 'p_' + md5('event:' || event_key)[1:16].
-- An incremental run ($all_events false) decides the events of journeys.rebuild_events, reading the
-- sightings of journeys.rebuild_sighting_events (those events and the events sharing a refused
-- identifier with them); docs/performance.md, "Incremental runs".
with events as (
    select event_key, occurred_at from staging.events
    where $all_events or event_key in (select event_key from journeys.rebuild_events)
),

sightings as (
    select
        sightings.event_key,
        sightings.occurred_at,
        sightings.identifier,
        types.priority,
        mapped.person_id,
        mapped.refused_rule
    from identity.identifier_sightings as sightings
    inner join identity.identity_map as mapped on mapped.identifier = sightings.identifier
    inner join identity.identifier_types as types on types.identifier_type = sightings.identifier_type
    where $all_events or sightings.event_key in (select event_key from journeys.rebuild_sighting_events)
),

direct_ranked as (
    select
        event_key,
        person_id,
        row_number() over (partition by event_key order by priority, identifier) as choice
    from sightings
    where refused_rule is null
),

direct as (
    select event_key, person_id from direct_ranked where choice = 1
),

orphan_sightings as (
    select sightings.*
    from sightings
    left join direct on direct.event_key = sightings.event_key
    where direct.event_key is null
),

candidates as (
    select event_key, occurred_at, identifier
    from sightings
    where identifier in (select identifier from orphan_sightings)
),

candidate_ranked as (
    -- the same choice as direct_ranked, made again for the candidate events only: joining
    -- `direct` here let DuckDB join every sighting to every event's person first (6 s at 10M)
    select
        event_key,
        person_id,
        row_number() over (partition by event_key order by priority, identifier) as choice
    from sightings
    where refused_rule is null and event_key in (select event_key from candidates)
),

nearest_ranked as (
    select
        orphans.event_key,
        persons.person_id,
        row_number() over (
            partition by orphans.event_key
            order by
                abs(epoch(others.occurred_at) - epoch(orphans.occurred_at)),
                others.occurred_at,
                others.event_key
        ) as choice
    from orphan_sightings as orphans
    inner join candidates as others
        on others.identifier = orphans.identifier
        and others.event_key <> orphans.event_key
    inner join candidate_ranked as persons on persons.event_key = others.event_key and persons.choice = 1
),

nearest as (
    select event_key, person_id from nearest_ranked where choice = 1
),

own_ranked as (
    select
        event_key,
        person_id,
        row_number() over (partition by event_key order by priority, identifier) as choice
    from orphan_sightings
),

own as (
    select event_key, person_id from own_ranked where choice = 1
),

final as (
    select
        events.event_key,
        coalesce(direct.person_id, nearest.person_id, own.person_id, 'p_' || substr(md5('event:' || events.event_key), 1, 16)) as person_id,
        case
            when direct.person_id is not null then 'identifier'
            when nearest.person_id is not null then 'nearest_identified_event'
            when own.person_id is not null then 'refused_identifier'
            else 'no_identifier'
        end as person_rule
    from events
    left join direct on direct.event_key = events.event_key
    left join nearest on nearest.event_key = events.event_key
    left join own on own.event_key = events.event_key
)

select * from final

-- One row per staged event: the person it belongs to, and the rule that decided it.
--
-- Rules (docs/journeys.md), first that applies:
--   identifier               the person of the event's highest-priority usable identifier
--                            (setting identity.priority; an event has one identifier per type);
--   nearest_identified_event the event carries only refused identifiers (a shared device, a
--                            family email): the person of the nearest event in time on the same
--                            identifier that has a usable one -- not the last person to log in;
--                            ties: the earlier event, then the smaller event key;
--   refused_identifier       no such event: the refused identifier's own person;
--   no_identifier            the event has no identifier at all (an anonymous till receipt):
--                            a person of its own, 'p_' + md5('event:' || event_key)[1:16].
-- An incremental run ($all_events false) decides the events of journeys.rebuild_events, reading the
-- records and sightings of journeys.rebuild_sighting_events (those events and the records sharing
-- a refused identifier with them); docs/performance.md, "Incremental runs".
with events as (
    select event_key, occurred_at from staging.events
    where $all_events or event_key in (select event_key from journeys.rebuild_events)
),

priorities as (
    select
        max(case when identifier_type = 'anonymous_id' then priority end) as anonymous_id,
        max(case when identifier_type = 'user_id' then priority end) as user_id,
        max(case when identifier_type = 'contact_id' then priority end) as contact_id,
        max(case when identifier_type = 'email' then priority end) as email,
        max(case when identifier_type = 'phone' then priority end) as phone,
        max(case when identifier_type = 'loyalty_id' then priority end) as loyalty_id
    from identity.identifier_types
),

usable as (
    -- in an incremental run, of the identifiers the records looked up carry only
    select identifier, person_id from identity.identity_map
    where refused_rule is null
        and ($all_events or identifier in (
            select identifier from identity.identifier_sightings
            where event_key in (select event_key from journeys.rebuild_sighting_events)
        ))
),

looked_up as (
    -- each of an event's identifiers looked up in the map, in the text its sighting has
    -- (identifier_sightings.sql; a blocklisted value has no sighting, so no map row): a hash
    -- lookup per identifier column instead of ranking every event's sightings (a sort of 17M
    -- rows at 10M events). Of every record (staged events and CRM contact versions: identity.records,
    -- whose persons the nearest rule reads), or in an incremental run of the events decided and
    -- the records sharing a refused identifier with them (journeys.rebuild_sighting_events).
    select
        staged.event_key,
        least(
            case when anonymous.person_id is not null then priorities.anonymous_id end,
            case when users.person_id is not null then priorities.user_id end,
            case when contacts.person_id is not null then priorities.contact_id end,
            case when emails.person_id is not null then priorities.email end,
            case when phones.person_id is not null then priorities.phone end,
            case when loyalty.person_id is not null then priorities.loyalty_id end
        ) as best_priority,
        priorities.anonymous_id as anonymous_priority,
        priorities.user_id as user_priority,
        priorities.contact_id as contact_priority,
        priorities.email as email_priority,
        priorities.phone as phone_priority,
        anonymous.person_id as anonymous_person,
        users.person_id as user_person,
        contacts.person_id as contact_person,
        emails.person_id as email_person,
        phones.person_id as phone_person,
        loyalty.person_id as loyalty_person
    from identity.records as staged
    cross join priorities
    left join usable as anonymous on anonymous.identifier = 'anonymous_id:' || staged.anonymous_id
    left join usable as users on users.identifier = 'user_id:' || staged.user_id
    left join usable as contacts on contacts.identifier = 'contact_id:' || staged.contact_id
    left join usable as emails on emails.identifier = 'email:' || staged.email_hash
    left join usable as phones on phones.identifier = 'phone:' || staged.phone_hash
    left join usable as loyalty on loyalty.identifier = 'loyalty_id:' || staged.loyalty_id
    where $all_events or staged.event_key in (select event_key from journeys.rebuild_sighting_events)
),

direct as (
    -- one identifier per type on an event, and types have distinct priorities: no ties
    select
        event_key,
        case best_priority
            when anonymous_priority then anonymous_person
            when user_priority then user_person
            when contact_priority then contact_person
            when email_priority then email_person
            when phone_priority then phone_person
            else loyalty_person
        end as person_id
    from looked_up
    where best_priority is not null
),

orphan_sightings as (
    -- the sightings of the events without a usable identifier: all refused (or none at all)
    select
        sightings.event_key,
        sightings.occurred_at,
        sightings.identifier,
        types.priority,
        mapped.person_id
    from identity.identifier_sightings as sightings
    inner join identity.identity_map as mapped on mapped.identifier = sightings.identifier
    inner join identity.identifier_types as types on types.identifier_type = sightings.identifier_type
    where sightings.event_key in (select event_key from looked_up where best_priority is null)
),

candidates as (
    select event_key, occurred_at, identifier
    from identity.identifier_sightings
    where identifier in (select identifier from orphan_sightings)
        and ($all_events or event_key in (select event_key from journeys.rebuild_sighting_events))
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
    inner join direct as persons on persons.event_key = others.event_key
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

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
with priorities as (
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
    select identifier, identifier_type, person_id from identity.identity_map
    where refused_rule is null
        and ($all_events or identifier in (
            select identifier from identity.identifier_sightings
            where event_key in (select event_key from journeys.rebuild_sighting_events)
        ))
),

direct as (
    -- every record once, with the person of its highest-priority usable identifier (null when it
    -- has none). Each of a record's identifiers is looked up in the map, in the text its sighting
    -- has (identifier_sightings.sql; a blocklisted value has no sighting, so no map row): a hash
    -- lookup per identifier column, each against the map's rows of its type only, instead of
    -- ranking every event's sightings (a sort of 17M rows at 10M events). One identifier per type
    -- on an event, and types have distinct priorities: no ties. Of every record (staged events and
    -- CRM contact versions: identity.records, whose persons the nearest rule reads), or in an
    -- incremental run of the events decided and the records sharing a refused identifier with
    -- them (journeys.rebuild_sighting_events). Only these three columns are kept, and the later
    -- steps read them rather than join every event again: at 100M events, keeping the six
    -- looked-up persons and joining the 100M events back spilled more than the disk held.
    select
        staged.event_key,
        staged.event_key like 'crm:contact_version:%' as is_contact_version,
        case least(
            case when anonymous.person_id is not null then priorities.anonymous_id end,
            case when users.person_id is not null then priorities.user_id end,
            case when contacts.person_id is not null then priorities.contact_id end,
            case when emails.person_id is not null then priorities.email end,
            case when phones.person_id is not null then priorities.phone end,
            case when loyalty.person_id is not null then priorities.loyalty_id end
        )
            when priorities.anonymous_id then anonymous.person_id
            when priorities.user_id then users.person_id
            when priorities.contact_id then contacts.person_id
            when priorities.email then emails.person_id
            when priorities.phone then phones.person_id
            else loyalty.person_id
        end as person_id
    from identity.records as staged
    cross join priorities
    left join usable as anonymous on anonymous.identifier = 'anonymous_id:' || staged.anonymous_id and anonymous.identifier_type = 'anonymous_id'
    left join usable as users on users.identifier = 'user_id:' || staged.user_id and users.identifier_type = 'user_id'
    left join usable as contacts on contacts.identifier = 'contact_id:' || staged.contact_id and contacts.identifier_type = 'contact_id'
    left join usable as emails on emails.identifier = 'email:' || staged.email_hash and emails.identifier_type = 'email'
    left join usable as phones on phones.identifier = 'phone:' || staged.phone_hash and phones.identifier_type = 'phone'
    left join usable as loyalty on loyalty.identifier = 'loyalty_id:' || staged.loyalty_id and loyalty.identifier_type = 'loyalty_id'
    where $all_events or staged.event_key in (select event_key from journeys.rebuild_sighting_events)
),

run_events as (
    -- the staged events of the run: every one, or in an incremental run journeys.rebuild_events
    -- (whose records journeys.rebuild_sighting_events holds)
    select event_key, person_id
    from direct
    where not is_contact_version
        and ($all_events or event_key in (select event_key from journeys.rebuild_events))
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
    where sightings.event_key in (select event_key from run_events where person_id is null)
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
    inner join direct as persons on persons.event_key = others.event_key and persons.person_id is not null
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
    -- an event with a usable identifier needs no other step; only the few without one (1.1M of
    -- the 104M records at 100M events) are joined to the nearest and own persons
    select event_key, person_id, 'identifier' as person_rule
    from run_events
    where person_id is not null
    union all
    select
        orphans.event_key,
        coalesce(nearest.person_id, own.person_id, 'p_' || substr(md5('event:' || orphans.event_key), 1, 16)) as person_id,
        case
            when nearest.person_id is not null then 'nearest_identified_event'
            when own.person_id is not null then 'refused_identifier'
            else 'no_identifier'
        end as person_rule
    from run_events as orphans
    left join nearest on nearest.event_key = orphans.event_key
    left join own on own.event_key = orphans.event_key
    where orphans.person_id is null
)

select * from final

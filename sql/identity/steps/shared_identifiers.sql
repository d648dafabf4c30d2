-- Identifiers seen directly with more identifiers of a limited type than one person may hold
-- (e.g. a device used by two logins, a family email on two CRM contacts): they are not used to
-- merge. An identifier of a higher priority than that type keeps its other links and loses only
-- its links to that type (see refused_links); one of lower priority is refused as a whole.
-- An incremental run ($whole_graph false) decides only the identifiers of identity.region, from
-- every link touching them (docs/performance.md, "Incremental runs").
with region as (
    select identifier from identity.region
),

links as (
    -- the distinct pairs (steps/link_pairs.sql)
    select left_identifier, right_identifier, left_type, right_type
    from identity.link_pairs
    where $whole_graph
        or left_identifier in (select identifier from region)
        or right_identifier in (select identifier from region)
),

directed as (
    select left_identifier as identifier, left_type as identifier_type, right_identifier as neighbour, right_type as neighbour_type from links
    union all
    select right_identifier as identifier, right_type as identifier_type, left_identifier as neighbour, left_type as neighbour_type from links
),

counted as (
    -- identity.link_pairs holds each pair once, left_identifier < right_identifier, so an
    -- identifier meets each of its neighbours in one row of `directed`: a count of rows, not a
    -- distinct count, which needed a hash table of every (identifier, neighbour) besides the
    -- groups' (session 49: 10M events 1.28-1.49 -> 0.64-0.65 s; ten copies of the 10M pairs, a
    -- stand-in for 100M, 22.5-24.8 -> 12.5-15.0 s; the same rows by count and checksum)
    select directed.identifier, directed.identifier_type, directed.neighbour_type, count(*) as neighbours
    from directed
    group by directed.identifier, directed.identifier_type, directed.neighbour_type
),

final as (
    select
        counted.identifier,
        counted.identifier_type,
        counted.neighbour_type,
        counted.neighbours,
        own.priority < limited.priority as keeps_other_links
    from counted
    inner join identity.identifier_types as limited on limited.identifier_type = counted.neighbour_type
    inner join identity.identifier_types as own on own.identifier_type = counted.identifier_type
    where limited.max_per_person is not null
        and counted.neighbours > limited.max_per_person
        and ($whole_graph or counted.identifier in (select identifier from region))
)

select * from final

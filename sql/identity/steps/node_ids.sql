-- One integer node per identifier (sightings and usable links), numbered in identifier order.
-- An incremental run ($whole_graph false) numbers the identifiers of identity.region only.
-- The identifiers are made distinct by their text alone, their type taken after from the text
-- before the colon (an identifier's text is `<type>:<value>`, identifier_sightings.sql), as in
-- steps/link_pairs.sql (session 49, the same rows by count and checksum: 10M events 3.69-5.39 ->
-- 2.72-3.43 s; ten copies of the 10M sightings and pairs, a stand-in for 100M, 48.3-51.7 ->
-- 35.2-41.6 s).
with identifiers as (
    select identifier from identity.identifier_sightings
    where $whole_graph or identifier in (select identifier from identity.region)
    union
    select left_identifier as identifier from identity.usable_links
    union
    select right_identifier as identifier from identity.usable_links
),

final as (
    select identifier, split_part(identifier, ':', 1) as identifier_type, row_number() over (order by identifier) as node
    from identifiers
)

select * from final

-- Pairwise precision and recall of the resolved persons against a ground truth (one row).
-- Over all pairs of truth events: a pair is true when both events have the same true person,
-- predicted when they have the same resolved person (journeys.event_persons); events missing from
-- the stream count as persons of their own. precision = both / predicted, recall = both / true.
with joined as (
    select truth.person_id as true_person, coalesce(resolved.person_id, 'missing:' || truth.event_key) as resolved_person
    from truth_events as truth
    left join journeys.event_persons as resolved on resolved.event_key = truth.event_key
),

cells as (
    select true_person, resolved_person, count(*) as events from joined group by true_person, resolved_person
),

both_same as (
    select sum(events * (events - 1) / 2) as pairs from cells
),

predicted as (
    select sum(events * (events - 1) / 2) as pairs from (select resolved_person, sum(events) as events from cells group by resolved_person) as r
),

actual as (
    select sum(events * (events - 1) / 2) as pairs from (select true_person, sum(events) as events from cells group by true_person) as t
),

final as (
    select
        (select count(*) from truth_events) as truth_events,
        both_same.pairs as pairs_both,
        predicted.pairs as pairs_predicted,
        actual.pairs as pairs_true,
        both_same.pairs / predicted.pairs as pairwise_precision,
        both_same.pairs / actual.pairs as pairwise_recall
    from both_same, predicted, actual
)

select * from final

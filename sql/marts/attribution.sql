-- Grain: one row per attribution model x dimension (channel or campaign) x value: the conversions
-- and revenue credited to it, over converting and non-converting journeys (journeys.touches;
-- definitions and worked examples in docs/attribution.md). Each model's credits sum to the number
-- of converting journeys, and its revenue credits to their revenue.
--
-- first_touch / last_touch: all credit to the journey's first / last touch. linear: 1/n to each
-- of n touches. position_based: $first_share to the first touch, $last_share to the last, the
-- rest shared by the touches between (two touches: split in proportion, one touch: all).
-- time_decay: weight 0.5 ^ (hours before the conversion / ($half_life_days x 24)), normalised per
-- journey. markov: conversions x removal effect / sum of removal effects, the removal effects
-- solved exactly from the absorbing chain (journeys.markov_removal_effects).
--
-- Columns: conversions (credited), revenue (credited), share (of the model's conversions),
-- touches (touches with this value in converting journeys), journeys (journeys touched by it,
-- converting or not), converting_journeys.
with converted_touches as (
    select * from journeys.touches where converted
),

weighted as (
    select
        converted_touches.*,
        case when touch_number = 1 then 1.0 else 0.0 end as first_touch,
        case when touch_number = touch_count then 1.0 else 0.0 end as last_touch,
        1.0 / touch_count as linear,
        case
            when touch_count = 1 then 1.0
            when touch_count = 2 and touch_number = 1 then $first_share / ($first_share + $last_share)
            when touch_count = 2 then $last_share / ($first_share + $last_share)
            when touch_number = 1 then $first_share
            when touch_number = touch_count then $last_share
            else (1.0 - $first_share - $last_share) / (touch_count - 2)
        end as position_based,
        power(0.5, hours_before_conversion / ($half_life_days * 24.0)) as decay_weight
    from converted_touches
),

normalised as (
    select
        weighted.*,
        decay_weight / cast(sum(cast(decay_weight as decimal(38, 18))) over (partition by journey_id) as double) as time_decay
    from weighted
),

models as (
    select model from (values ('first_touch'), ('last_touch'), ('linear'), ('position_based'), ('time_decay')) as listed(model)
),

dimensions as (
    select dimension from (values ('channel'), ('campaign')) as listed(dimension)
),

credited as (
    select
        models.model,
        dimensions.dimension,
        case when dimensions.dimension = 'channel' then normalised.channel else normalised.campaign end as value,
        case
            when models.model = 'first_touch' then normalised.first_touch
            when models.model = 'last_touch' then normalised.last_touch
            when models.model = 'linear' then normalised.linear
            when models.model = 'position_based' then normalised.position_based
            else normalised.time_decay
        end as credit,
        normalised.conversion_revenue
    from normalised
    cross join models
    cross join dimensions
),

heuristic as (
    select
        model,
        dimension,
        value,
        cast(sum(cast(credit as decimal(38, 15))) as double) as conversions,
        cast(sum(cast(credit * coalesce(conversion_revenue, 0) as decimal(38, 12))) as double) as revenue
    from credited
    group by model, dimension, value
),

totals as (
    select count(distinct journey_id) as conversions, cast(sum(cast(coalesce(conversion_revenue, 0) as decimal(38, 12))) as double) as revenue
    from (select distinct journey_id, conversion_revenue from converted_touches) as journeys_converted
),

effect_totals as (
    select dimension, cast(sum(cast(removal_effect as decimal(38, 18))) as double) as total_effect
    from journeys.markov_removal_effects
    group by dimension
),

markov as (
    select
        'markov' as model,
        effects.dimension,
        effects.state as value,
        case when effect_totals.total_effect > 0
            then totals.conversions * effects.removal_effect / effect_totals.total_effect else 0.0 end as conversions,
        case when effect_totals.total_effect > 0
            then totals.revenue * effects.removal_effect / effect_totals.total_effect else 0.0 end as revenue
    from journeys.markov_removal_effects as effects
    inner join effect_totals on effect_totals.dimension = effects.dimension
    cross join totals
),

all_models as (
    select * from heuristic
    union all
    select * from markov
),

reach as (
    select
        dimensions.dimension,
        case when dimensions.dimension = 'channel' then touched.channel else touched.campaign end as value,
        count(case when touched.converted then 1 end) as touches,
        count(distinct touched.journey_id) as journeys,
        count(distinct case when touched.converted then touched.journey_id end) as converting_journeys
    from journeys.touches as touched
    cross join dimensions
    group by dimensions.dimension, case when dimensions.dimension = 'channel' then touched.channel else touched.campaign end
),

final as (
    select
        all_models.model,
        all_models.dimension,
        all_models.value,
        all_models.conversions,
        all_models.revenue,
        case when totals.conversions > 0 then all_models.conversions / totals.conversions end as share,
        coalesce(reach.touches, 0) as touches,
        coalesce(reach.journeys, 0) as journeys,
        coalesce(reach.converting_journeys, 0) as converting_journeys
    from all_models
    cross join totals
    left join reach on reach.dimension = all_models.dimension and reach.value = all_models.value
)

select * from final

"""Identity layer: identifier links, persons and the record of every merge and refusal."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.identity import resolve
from journey_analytics.warehouse import ensure_schemas

from pipelines.factory import definition_metadata, summary, table_metadata
from pipelines.resources import JourneySettings

TABLES = ("identifier_sightings", "identifier_links", "identity_map", "persons", "link_decisions", "person_id_history")
KEYS = {t: dg.AssetKey(["identity", t]) for t in TABLES}
DESCRIPTIONS = {"person_id_history": "Every person id that no longer exists (absorbed by a merge or split), with the id that holds it now."}


@dg.multi_asset(
    name="resolve_identities",
    specs=[
        dg.AssetSpec(KEYS[t], description=DESCRIPTIONS.get(t) or summary("identity", t), group_name="identity",
                     metadata=definition_metadata("identity", t),
                     deps=[dg.AssetKey(["staging", "events"]), dg.AssetKey(["staging", "contact_versions"])], kinds={"duckdb", "sql"})
        for t in TABLES
    ],
    check_specs=[
        dg.AssetCheckSpec("one_person_per_identifier", asset=KEYS["identity_map"], description="Every identifier maps to exactly one person."),
        dg.AssetCheckSpec("at_most_one_contact_per_person", asset=KEYS["persons"], description="No person holds two CRM contact ids (or two login ids)."),
        dg.AssetCheckSpec("largest_person_within_bound", asset=KEYS["persons"], description="The largest person holds no more identifiers than identity.max_identifiers_per_person."),
    ],
    pool="duckdb",
    can_subset=False,
)
def resolve_identities(journey: JourneySettings, duckdb: DuckDBResource):
    settings = journey.get()
    with duckdb.get_connection() as con:
        ensure_schemas(con)
        figures = resolve(con, settings)
        for table in TABLES:
            yield dg.MaterializeResult(asset_key=KEYS[table], metadata={**table_metadata(con, f"identity.{table}"),
                                                                        **({k: v for k, v in figures.items()} if table == "identity_map" else {})})
        repeated = con.execute("select count(*) - count(distinct identifier) from identity.identity_map").fetchall()[0][0]
        over = con.execute("select count(*) from identity.persons where contact_ids > 1 or user_ids > 1").fetchall()[0][0]
        largest = con.execute("select coalesce(max(identifiers), 0) from identity.persons").fetchall()[0][0]
    bound = settings.identity.max_identifiers_per_person
    yield dg.AssetCheckResult(asset_key=KEYS["identity_map"], check_name="one_person_per_identifier", passed=repeated == 0,
                              metadata={"identifiers_with_several_persons": int(repeated)})
    yield dg.AssetCheckResult(asset_key=KEYS["persons"], check_name="at_most_one_contact_per_person", passed=over == 0,
                              metadata={"persons_over_limit": int(over)})
    yield dg.AssetCheckResult(asset_key=KEYS["persons"], check_name="largest_person_within_bound", passed=largest <= bound,
                              metadata={"largest_person_identifiers": int(largest), "bound": bound})

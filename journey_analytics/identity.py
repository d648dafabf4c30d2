"""Identity resolution: identifiers seen together become persons, with guards against over-merging.

Steps (docs/identity.md has the rules with worked examples):
1. identity.identifier_sightings / identifier_links (sql/identity/): identifiers on one event or
   CRM contact version, and the pairs they form, each with its evidence and rule.
2. Guards: values on the blocklist never link; an identifier seen with more identifiers of a
   limited type than a person may hold (a shared device, a family email) is refused, or, if it
   has a higher priority than that type, loses only those links.
3. Connected components of the usable links by large-star / small-star rounds (set-based SQL,
   a number of rounds growing with the logarithm of the graph, not its diameter).
4. A component still holding too many identifiers of a limited type loses the links of its
   lowest-priority identifier type, and the components are computed again, until none does.
5. Every identifier gets the person id of its component: `p_` + the first 16 hex digits of the
   MD5 of the component's anchor (its highest-priority identifier, ties by text).
6. identity.person_id_history maps every id that stopped existing (absorbed by a merge, or split)
   to the id holding most of its identifiers now.
"""

from __future__ import annotations

import contextlib
import hashlib

import duckdb
import polars as pl

from journey_analytics import incremental, privacy
from journey_analytics.settings import Settings
from journey_analytics.warehouse import (
    SQL_DIR, bind, build_model, compact_tables, create_from_file, sql_path, table_exists, write_table,
)

STEPS = SQL_DIR / "identity" / "steps"
MAX_ROUNDS = 200
MODEL = "identity"
#: what the next incremental run reads besides the new data
STATE_TABLES = ("identity_map", "persons", "link_decisions", "link_components", "refused_identifiers", "refused_links",
                "identifier_sightings", "identifier_links", "record_fingerprints")
#: work tables of one run, dropped at its end
_WORK = ("previous_identity_map", "changed_records", "sightings_before", "sightings_rebuilt", "links_before", "links_rebuilt",
         "region", "region_map", "kept_refused_identifiers", "kept_refused_links", "link_labels", "redecided_pairs",
         "link_pairs", "decisions_rebuilt", "persons_rebuilt")
#: what changed, for journeys.event_persons (docs/performance.md)
LOG = "identity.pending_changes"


def _step(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None):
    sql = (STEPS / f"{name}.sql").read_text()
    return con.execute(sql, bind(sql, params or {}))


def _create_from_step(con: duckdb.DuckDBPyConnection, table: str, name: str, params: dict | None = None) -> None:
    create_from_file(con, f"identity.{table}", STEPS / f"{name}.sql", params)


def write_reference_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """identity.identifier_types (priority, limit) and identity.blocked_identifiers from settings."""
    s = settings.identity
    types = pl.DataFrame(
        {
            "identifier_type": s.priority,
            "priority": list(range(1, len(s.priority) + 1)),
            "max_per_person": [s.max_per_person.get(t) for t in s.priority],
        },
        schema={"identifier_type": pl.String, "priority": pl.Int64, "max_per_person": pl.Int64},
    )
    write_table(con, "identity.identifier_types", types)
    rows = []
    for kind in s.priority:
        for value in s.blocklist_values:
            rows.append((kind, value.strip().lower(), "blocklisted value"))
    # only hashes reach the warehouse, even of junk addresses; the reason names the settings entry
    for n, email in enumerate(s.blocklist_emails, start=1):
        normalised = privacy.normalise_email(email)
        if normalised:
            rows.append(("email", privacy.hash_value(normalised, settings.hash_salt), f"identity.blocklist_emails entry {n}"))
    for n, phone in enumerate(s.blocklist_phones, start=1):
        normalised = privacy.normalise_phone(phone, settings.ingest.phone_default_country)
        if normalised:
            rows.append(("phone", privacy.hash_value(normalised, settings.hash_salt), f"identity.blocklist_phones entry {n}"))
    blocked = pl.DataFrame(rows, schema={"identifier_type": pl.String, "identifier_value": pl.String, "reason": pl.String},
                           orient="row").unique().sort(pl.all())
    write_table(con, "identity.blocked_identifiers", blocked)


def connected_components(con: duckdb.DuckDBPyConnection, whole_graph: bool = True) -> int:
    """identity.cc_components from identity.usable_links (and the sightings' identifiers, of
    identity.region only unless `whole_graph`); returns the number of star rounds."""
    con.execute("create table if not exists identity.region (identifier varchar)")
    _create_from_step(con, "cc_nodes", "node_ids", {"whole_graph": whole_graph})
    return _star_rounds(con)


def _star_rounds(con: duckdb.DuckDBPyConnection) -> int:
    """identity.cc_components: the components of identity.usable_links over the numbered nodes of
    identity.cc_nodes; returns the number of star rounds."""
    _create_from_step(con, "cc_edges", "edges")
    rounds = 0
    while True:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise RuntimeError("connected components did not converge")
        _create_from_step(con, "cc_edges_next", "large_star")
        con.execute("create or replace table identity.cc_edges as select * from identity.cc_edges_next")
        _create_from_step(con, "cc_edges_next", "small_star")
        con.execute("create or replace table identity.cc_edges as select * from identity.cc_edges_next")
        if _step(con, "unfinished_edges").fetchall()[0][0] == 0:
            break
    _create_from_step(con, "cc_components", "component_members")
    con.execute("drop table if exists identity.cc_edges_next")
    return rounds


def record_id_changes(con: duckdb.DuckDBPyConnection, had_map: bool) -> None:
    """Keep identity.person_id_history: every person id that existed once -> the id holding it now."""
    con.execute(
        "create table if not exists identity.person_id_history "
        "(previous_person_id varchar, person_id varchar, identifiers_moved bigint)"
    )
    if not had_map:
        return
    _create_from_step(con, "id_changes", "person_id_changes")
    con.execute("begin transaction")
    # earlier entries follow their person to its new id, then the new changes are added
    con.execute(
        """
        update identity.person_id_history as history set person_id = changes.person_id
        from identity.id_changes as changes where history.person_id = changes.previous_person_id
        """
    )
    con.execute(
        """
        insert into identity.person_id_history
        select changes.previous_person_id, changes.person_id, changes.identifiers_moved
        from identity.id_changes as changes
        left join identity.person_id_history as history on history.previous_person_id = changes.previous_person_id
        where history.previous_person_id is null
        """
    )
    # an id that exists again is nobody's old id any more
    con.execute(
        """
        delete from identity.person_id_history
        where previous_person_id in (select distinct person_id from identity.identity_map) or previous_person_id = person_id
        """
    )
    con.execute("commit")
    con.execute("drop table if exists identity.id_changes")


def _fingerprint(settings: Settings) -> str:
    s = settings
    parts = [s.identity.model_dump_json(), hashlib.sha256(s.hash_salt.encode()).hexdigest(), s.ingest.phone_default_country]
    return incremental.fingerprint(parts, sorted((SQL_DIR / "identity").rglob("*.sql")))


def _shared_refusals(con: duckdb.DuckDBPyConnection, whole_graph: bool) -> None:
    """identity.refused_identifiers / refused_links from the shared-identifier guard (round 0): of
    the whole graph, or of the links inside identity.region."""
    _create_from_step(con, "shared", "shared_identifiers", {"whole_graph": whole_graph})
    con.execute(
        """
        create or replace table identity.refused_identifiers as
        select identifier, identifier_type, 'shared_identifier' as rule,
               'seen with ' || cast(max(neighbours) as varchar) || ' identifiers of type ' || min(neighbour_type) as detail,
               0 as round
        from identity.shared where not keeps_other_links group by identifier, identifier_type
        """
    )
    con.execute(
        """
        create or replace table identity.refused_links as
        select distinct links.left_identifier, links.right_identifier, 'shared_identifier' as rule, 0 as round
        from identity.link_pairs as links
        inner join identity.shared as shared
            on shared.keeps_other_links
            and ((links.left_identifier = shared.identifier and links.right_type = shared.neighbour_type)
              or (links.right_identifier = shared.identifier and links.left_type = shared.neighbour_type))
        where $whole_graph
            or (links.left_identifier in (select identifier from identity.region)
                and links.right_identifier in (select identifier from identity.region))
        """,
        {"whole_graph": whole_graph},
    )


def _rename(con: duckdb.DuckDBPyConnection, table: str, to: str) -> None:
    """Put identity.`table` in the place of identity.`to` (no copy)."""
    con.execute(f"drop table if exists identity.{to}")
    con.execute(f"alter table identity.{table} rename to {to}")


def _guarded_components(con: duckdb.DuckDBPyConnection, whole_graph: bool) -> tuple[int, int]:
    """Components of the usable links, with over-limit components split round by round; returns
    (star rounds, guard rounds). Records identity.link_components from the first round.

    The first pass covers the whole graph (or identity.region); each guard round computes again
    only the components that were over the limit (steps/guard_nodes.sql), whose refusals cannot
    change any other component. identity.usable_links and cc_nodes then hold only the last round's
    part of the graph; identity.cc_components every component.
    """
    _create_from_step(con, "usable_links", "usable_links", {"whole_graph": whole_graph})
    total_rounds = connected_components(con, whole_graph)
    _create_from_step(con, "link_labels", "link_component_labels")
    _create_from_step(con, "over_limit", "over_limit_components")
    guard_round = 0
    while con.execute("select count(*) from identity.over_limit").fetchall()[0][0]:
        if guard_round == 0:
            con.execute("create or replace table identity.final_components as select * from identity.cc_components "
                        "where component not in (select component from identity.over_limit)")
        guard_round += 1
        if guard_round > MAX_ROUNDS:
            raise RuntimeError("the over-limit guard did not converge")
        # in every over-limit component its lowest-priority unlimited type that still links gives
        # way; a component with none loses its links between limited types
        _create_from_step(con, "over_limit_types", "over_limit_types")
        con.execute(
            """
            insert into identity.refused_identifiers
            select distinct members.identifier, members.identifier_type, 'over_limit_component' as rule,
                   'its component held more identifiers of a limited type than one person may' as detail, $round as round
            from identity.cc_components as members
            inner join identity.over_limit_types as types
                on types.component = members.component and types.identifier_type = members.identifier_type
            """,
            {"round": guard_round},
        )
        con.execute(
            """
            insert into identity.refused_links
            select distinct links.left_identifier, links.right_identifier, 'over_limit_component' as rule, $round as round
            from identity.usable_links as links
            inner join identity.cc_components as members on members.identifier = links.left_identifier
            inner join identity.over_limit_types as types on types.component = members.component and types.identifier_type is null
            """,
            {"round": guard_round},
        )
        _create_from_step(con, "guard_nodes", "guard_nodes")
        _create_from_step(con, "guard_links", "guard_links", {"round": guard_round})
        _rename(con, "guard_nodes", "cc_nodes")
        _rename(con, "guard_links", "usable_links")
        total_rounds += _star_rounds(con)
        _create_from_step(con, "over_limit", "over_limit_components")
        con.execute("insert into identity.final_components select * from identity.cc_components "
                    "where component not in (select component from identity.over_limit)")
    if guard_round:
        _rename(con, "final_components", "cc_components")
    return total_rounds, guard_round


def _resolve_whole(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    _shared_refusals(con, whole_graph=True)
    rounds = _guarded_components(con, whole_graph=True)
    # renamed, not copied: nothing reads identity.link_labels after this in a whole build
    _rename(con, "link_labels", "link_components")
    build_model(con, "identity", "identity_map")
    return rounds


def _resolve_region(con: duckdb.DuckDBPyConnection) -> tuple[int, int] | None:
    """Decide again only the identifiers of identity.region and keep the rest of the previous
    result; None (nothing written) when a link leaving the region would merge, which the region's
    definition rules out -- the caller then resolves the whole graph."""
    con.execute("create or replace table identity.kept_refused_identifiers as select * from identity.refused_identifiers "
                "where identifier not in (select identifier from identity.region)")
    con.execute("create or replace table identity.kept_refused_links as select * from identity.refused_links "
                "where not (left_identifier in (select identifier from identity.region) "
                "and right_identifier in (select identifier from identity.region))")
    _shared_refusals(con, whole_graph=False)
    rounds = _guarded_components(con, whole_graph=False)
    con.execute("insert into identity.refused_identifiers select * from identity.kept_refused_identifiers")
    con.execute("insert into identity.refused_links select * from identity.kept_refused_links")
    leaks = _step(con, "region_leaks").fetchall()[0][0]
    if leaks:
        return None
    create_from_file(con, "identity.region_map", sql_path("identity", "identity_map"))
    in_region = "where identifier in (select identifier from identity.region)"
    _replace(con, [("identity_map", in_region, "select * from identity.region_map"),
                   ("link_components", in_region, "select * from identity.link_labels")])
    # the persons that held a region identifier before or hold one now: all their identifiers are
    # in the region (it holds whole link components, and a person lies within one)
    create_from_file(con, "identity.persons_rebuilt", sql_path("identity", "persons"), {"all_persons": False})
    _replace(con, [("persons", "where person_id in (select person_id from identity.previous_identity_map "
                               "union select person_id from identity.region_map)", "select * from identity.persons_rebuilt")])
    return rounds


#: the records a run's sightings and links are built from (the view identity.record_scope): every
#: record, or in a daily run the changed ones
RECORD_SCOPES = {
    "all": "select * from identity.records",
    "changed": "select * from identity.records where event_key in (select event_key from identity.changed_records)",
}


def create_record_identifiers(con: duckdb.DuckDBPyConnection, scope: str) -> None:
    """The views identity.record_scope (RECORD_SCOPES[scope]) and identity.record_identifiers
    (steps/record_identifiers.sql): each record's identifiers, blocklisted values left out, which
    the sightings and the links read."""
    con.execute(f"create or replace view identity.record_scope as {RECORD_SCOPES[scope]}")
    con.execute(f"create or replace view identity.record_identifiers as\n{(STEPS / 'record_identifiers.sql').read_text()}")


@contextlib.contextmanager
def changed_records_scope(con: duckdb.DuckDBPyConnection):
    """identity.record_identifiers holds the changed records only inside the block, and every record
    again after it, even when the block fails: the views stay in the warehouse for analysts."""
    create_record_identifiers(con, "changed")
    try:
        yield
    finally:
        create_record_identifiers(con, "all")


def _build_evidence(con: duckdb.DuckDBPyConnection) -> None:
    """Sightings, links and record fingerprints of every record."""
    create_record_identifiers(con, "all")
    build_model(con, "identity", "identifier_sightings")
    build_model(con, "identity", "identifier_links")
    con.execute("create or replace table identity.record_fingerprints as select event_key, fingerprint from identity.records")


def _replace(con: duckdb.DuckDBPyConnection, replacements: list[tuple[str, str, str]]) -> None:
    """In one transaction, for each (table, where, rows): delete the rows of identity.<table>
    matching `where` and insert the query `rows` in their place; then compact the tables whose
    deleted rows call for it (warehouse.compact_tables)."""
    con.execute("begin transaction")
    for table, where, rows in replacements:
        con.execute(f"delete from identity.{table} {where}")
        con.execute(f"insert into identity.{table} {rows}")
    con.execute("commit")
    compact_tables(con, [f"identity.{table}" for table, _, _ in replacements])


def _update_evidence(con: duckdb.DuckDBPyConnection, logged: int | None) -> int:
    """Replace the sightings, links and fingerprints of the records that changed since the last
    build (steps/changed_records.sql), keeping their old sightings and links aside (for the region
    and the change log): of the staged events, only the `logged` ones staging.events logged (in
    staging.logged_events), or all when None; returns how many were compared."""
    _create_from_step(con, "changed_records", "changed_records", {"all_records": logged is None})
    # the old rows are only a recorded record's (a record with no fingerprint has no sightings or
    # links: the last build wrote a record's fingerprint with them, and an interrupted build
    # leaves no build fingerprint, so the next one is whole)
    changed = "where event_key in (select event_key from identity.changed_records where was_recorded)"
    con.execute(f"create or replace table identity.sightings_before as select * from identity.identifier_sightings {changed}")
    con.execute(f"create or replace table identity.links_before as select * from identity.identifier_links {changed}")
    with changed_records_scope(con):
        create_from_file(con, "identity.sightings_rebuilt", sql_path("identity", "identifier_sightings"))
        _replace(con, [("identifier_sightings", changed, "select * from identity.sightings_rebuilt")])
        create_from_file(con, "identity.links_rebuilt", sql_path("identity", "identifier_links"))
    _replace(con, [
        ("identifier_links", changed, "select * from identity.links_rebuilt"),
        ("record_fingerprints", changed,
         "select event_key, fingerprint from identity.changed_records where fingerprint is not null"),
    ])
    return incremental.events_compared(con, logged)


#: the link_decisions rows an incremental run decides again (link_decisions.sql's filter)
_REDECIDED = """
where left_identifier in (select identifier from identity.region)
    or right_identifier in (select identifier from identity.region)
    or exists (
        select 1 from identity.redecided_pairs as pairs
        where pairs.left_identifier = link_decisions.left_identifier and pairs.right_identifier = link_decisions.right_identifier
    )
"""


def _link_pairs(con: duckdb.DuckDBPyConnection, whole_graph: bool) -> None:
    """identity.link_pairs (steps/link_pairs.sql): every distinct pair with its evidence, or in an
    incremental run the pairs with an end in the region and those whose evidence changed
    (identity.redecided_pairs: the pairs of the changed records' links, before and after)."""
    if whole_graph:
        con.execute("create or replace table identity.redecided_pairs (left_identifier varchar, right_identifier varchar)")
    else:
        con.execute("create or replace table identity.redecided_pairs as "
                    "select left_identifier, right_identifier from identity.links_before "
                    "union select left_identifier, right_identifier from identity.links_rebuilt")
    _create_from_step(con, "link_pairs", "link_pairs", {"whole_graph": whole_graph})


def _update_link_decisions(con: duckdb.DuckDBPyConnection) -> int:
    """Decide again the pairs of identity.link_pairs: those with an end in the region and those
    whose evidence changed; returns how many pairs it decided."""
    create_from_file(con, "identity.decisions_rebuilt", sql_path("identity", "link_decisions"))
    _replace(con, [("link_decisions", _REDECIDED, "select * from identity.decisions_rebuilt")])
    return con.execute("select count(*) from identity.decisions_rebuilt").fetchall()[0][0]


def _keep_previous_map(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """identity.previous_identity_map: the map before this run changes it, of the identifiers
    `where` selects -- of the region only in an incremental run: nothing outside it changes, and a
    person id that disappears had all its identifiers in it (10M events: 1.7-2.3 s for the whole
    map)."""
    con.execute(f"create or replace table identity.previous_identity_map as "
                f"select identifier, person_id, refused_rule from identity.identity_map {where}")


def resolve(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """Build every identity table; returns figures for the run's metadata.

    Incremental when the previous build used the same settings and SQL: only the region that new
    or removed links and identifiers touch is resolved again (docs/performance.md). Every run
    logs what changed in identity.pending_changes for journeys.event_persons.
    """
    write_reference_tables(con, settings)
    print_ = _fingerprint(settings)
    had_map = table_exists(con, "identity.identity_map")
    update = incremental.may_update(con, MODEL, print_, [f"identity.{t}" for t in STATE_TABLES])
    incremental.forget(con, MODEL)
    logged, read_to = incremental.events_to_compare(con, MODEL)
    con.execute(f"create or replace view identity.records as\n{(STEPS / 'records.sql').read_text()}")
    if update:
        compared = _update_evidence(con, logged)
    else:
        _build_evidence(con)
    # empty until a region is resolved (the SQL names them whatever the run)
    con.execute("create or replace table identity.region (identifier varchar)")
    con.execute("create or replace table identity.region_map (person_id varchar)")
    region = None
    if update:
        _create_from_step(con, "region", "region")
        region = con.execute("select count(*) from identity.region").fetchall()[0][0]
        _link_pairs(con, whole_graph=False)
        _keep_previous_map(con, "where identifier in (select identifier from identity.region)")
        rounds = _resolve_region(con) if region else (0, 0)
        if rounds is None:
            update, region = False, None
    if not update:
        _link_pairs(con, whole_graph=True)
        if had_map:
            _keep_previous_map(con, "")
        rounds = _resolve_whole(con)
        build_model(con, "identity", "persons", {"all_persons": True})
    if update:
        decided = _update_link_decisions(con)
        persons_again = con.execute("select count(*) from identity.persons_rebuilt").fetchall()[0][0] if region else 0
    else:
        build_model(con, "identity", "link_decisions")
    record_id_changes(con, had_map)
    incremental.ensure_log(con, LOG)
    if update:
        con.execute(f"insert into {LOG}\n" + (STEPS / "pending_changes.sql").read_text())
    else:
        incremental.log_everything(con, LOG)
    for table in _WORK:
        con.execute(f"drop table if exists identity.{table}")
    incremental.read_event_changes(con, MODEL, read_to)
    con.execute(f"drop table {incremental.LOGGED_EVENTS}")
    incremental.record(con, MODEL, print_)
    # identity.persons has one row per person id of the map
    persons, identifiers = con.execute(
        "select (select count(*) from identity.persons), (select count(*) from identity.identity_map)").fetchall()[0]
    figures = {"persons": persons, "identifiers": identifiers, "star_rounds": rounds[0], "guard_rounds": rounds[1],
               "mode": "incremental" if update else "whole", "identifiers_resolved_again": region if update else identifiers}
    return {**figures, "events_compared": compared, "pairs_decided_again": decided, "persons_built_again": persons_again} if update else figures

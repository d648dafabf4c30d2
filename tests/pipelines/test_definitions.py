"""The Dagster code location loads, and its asset graph matches the reviewed snapshot."""

import json
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs

SNAPSHOT = Path(__file__).parent / "asset_graph.json"


def current_graph() -> dict:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    }


def test_asset_graph_matches_the_snapshot():
    # to accept a deliberate change: python -c "from tests.pipelines.test_definitions import write; write()"
    assert current_graph() == json.loads(SNAPSHOT.read_text())


def test_every_asset_has_a_description_and_writes_through_the_duckdb_pool():
    for assets_def in defs.assets:
        for key in assets_def.keys:
            assert assets_def.specs_by_key[key].description, key
        assert assets_def.op.pool == "duckdb", assets_def.keys


def test_ingestion_assets_are_partitioned_by_delivery_date_one_key_per_source():
    # one partitioned key per source: Dagster records a planned and a stored materialisation per
    # date per partitioned key (docs/ingestion.md); the staged tables follow, unpartitioned
    graph = defs.resolve_asset_graph()
    deliveries = sorted(k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "deliveries")
    assert deliveries == ["crm", "email", "store", "web"]
    partitioned = [k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None]
    assert sorted(partitioned) == [f"deliveries/{s}" for s in deliveries]
    for source in deliveries:
        partitions = graph.get(dg.AssetKey(["deliveries", source])).partitions_def
        assert partitions.get_first_partition_key() == "2010-01-01"
    staged = [k for k in graph.get_all_asset_keys() if k.path[-1].startswith("stg_")]
    assert len(staged) == 8
    for key in staged:
        source = key.path[-1].removeprefix("stg_").split("__")[0]
        assert [p.to_user_string() for p in graph.get(key).parent_keys] == [f"deliveries/{source}"]


def test_scheduled_jobs_run_their_steps_in_one_process():
    import dagster as dg  # noqa: PLC0415

    for job in ("ingest_deliveries", "refresh_downstream"):
        assert defs.resolve_job_def(job).executor_def == dg.in_process_executor, job


def write() -> None:
    SNAPSHOT.write_text(json.dumps(current_graph(), indent=2) + "\n")

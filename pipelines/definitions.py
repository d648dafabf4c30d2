"""The Dagster code location: assets by layer, checks, resources. Wiring only."""

import dagster as dg

from pipelines.automation import jobs, schedules, sensors
from pipelines.identity import resolve_identities
from pipelines.ingestion import ingestion_assets, staged_tables
from pipelines.journeys import journey_assets
from pipelines.resources import resources
from pipelines.staging import staging_assets
from pipelines.marts import helper_assets, mart_assets
from pipelines.publish import publish_assets
from pipelines.stages import stage_assets

defs = dg.Definitions(
    assets=[*ingestion_assets, staged_tables, *staging_assets, resolve_identities, *journey_assets, *stage_assets, *helper_assets, *mart_assets, *publish_assets],
    resources=resources(),
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    # every asset writes the one DuckDB file (pool of size 1), so steps run one at a time anyway;
    # in one process they skip the multiprocess executor's process start per step
    executor=dg.in_process_executor,
)

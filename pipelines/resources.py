"""Resources: the settings and the DuckDB warehouse they point at."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from journey_analytics.settings import Settings, load_settings
from journey_analytics.warehouse import connection_config


class JourneySettings(dg.ConfigurableResource):
    """journey.toml (or $JOURNEY_CONFIG), with the environment overrides the CLI sets."""

    def get(self) -> Settings:
        return load_settings()


def resources() -> dict:
    settings = load_settings()
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "journey": JourneySettings(),
        "duckdb": DuckDBResource(database=str(settings.warehouse_path), connection_config=connection_config(settings)),
    }

"""Dagster wiring of journey-analytics."""

# first of all, before anything imports duckdb: the package sets DuckDB's allocator options
import journey_analytics  # noqa: F401

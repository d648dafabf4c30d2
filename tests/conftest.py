"""Shared helpers: write landing files, load them into a throw-away warehouse, read tables."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import polars as pl
import pytest

from journey_analytics import identity, journeys, marts, staging
from journey_analytics.ingest.landing import SOURCES, delivery_dates
from journey_analytics.settings import PROJECT_ROOT, Settings, load_settings
from journey_analytics.warehouse import connect, fetch

TEST_DATA = Path(__file__).parent / "data"


class Landing:
    """A landing folder under tmp_path: `put("web", "2025-03-01", "a.jsonl", text)`."""

    def __init__(self, root: Path):
        self.root = root

    def put(self, source: str, day: str, name: str, content: str | bytes, gz: bool = False) -> Path:
        folder = self.root / source / day
        folder.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path = folder / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        return path


@pytest.fixture
def landing(tmp_path: Path) -> Landing:
    return Landing(tmp_path / "landing")


def settings_for(landing_dir: Path, warehouse: Path, **overrides) -> Settings:
    """The project's settings (journey.toml, so the UCI mapping is on) pointed at test folders."""
    return load_settings(PROJECT_ROOT / "journey.toml", landing_dir=landing_dir, warehouse_path=warehouse,
                         duckdb_temp_dir=warehouse.parent / "spill", **overrides)


def load(landing_dir: Path, warehouse: Path, *, reverse: bool = False, downstream: bool = False, **overrides) -> Settings:
    """Ingest every delivery of every source (optionally newest first) and build staging
    (and, with downstream=True, identity, journeys, stages and marts too)."""
    settings = settings_for(landing_dir, warehouse, **overrides)
    dates = delivery_dates(landing_dir)
    sources = list(reversed(SOURCES)) if reverse else list(SOURCES)
    with connect(settings) as con:
        for source in sources:
            for day in sorted(dates, reverse=reverse):
                staging.ingest(con, source, [day], settings)
        staging.build_staging(con, settings)
        if downstream:
            identity.resolve(con, settings)
            for model in journeys.MODELS:
                journeys.build_journey_model(con, model, settings)
            marts.build_marts(con, settings)
    return settings


def table(settings: Settings, sql: str, params: dict | None = None) -> pl.DataFrame:
    with connect(settings, read_only=True) as con:
        return fetch(con, sql, params)


@pytest.fixture
def run(landing: Landing, tmp_path: Path):
    """Load the landing folder; returns a function querying the warehouse."""

    def _run(**overrides):
        settings = load(landing.root, tmp_path / "warehouse.duckdb", **overrides)
        return lambda sql, params=None: table(settings, sql, params)

    return _run


def read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="session")
def generated_warehouse(tmp_path_factory) -> Settings:
    """A small generated landing folder (150 people over 40 days across two months) loaded through
    every layer up to the marts."""
    import datetime as dt  # noqa: PLC0415

    from journey_analytics.generator import GeneratorConfig, generate  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("generated")
    generate(GeneratorConfig(customers=150, days=40, seed=11, start=dt.date(2025, 5, 10)), tmp / "gen")
    return load(tmp / "gen" / "landing", tmp / "warehouse.duckdb", downstream=True)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """`journey run` on the bundled sample through Dagster: once into `first`, twice into `second`."""
    from tests.pipelines.conftest import journey_run  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("sample")
    home = tmp / "dagster_home"
    home.mkdir()
    first, second = tmp / "first.duckdb", tmp / "second.duckdb"
    output = journey_run(first, home)
    journey_run(second, home)
    journey_run(second, home)  # the same files again into the same warehouse
    return {"output": output, "first": first, "second": second, "tmp": tmp, "home": home}

"""Helpers for tests that run the `journey` command as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from journey_analytics.settings import PROJECT_ROOT


def journey(*args: str, home: Path, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    """`journey <args>` in a subprocess with its own Dagster home (the environment's overrides cleared)."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "JOURNEY_WAREHOUSE_PATH": "", "JOURNEY_LANDING_DIR": ""}
    result = subprocess.run([sys.executable, "-m", "journey_analytics.cli", *args], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def journey_run(warehouse: Path, home: Path, landing: Path | None = None) -> str:
    return journey("run", "--warehouse", str(warehouse), *(["--landing", str(landing)] if landing else []), home=home).stdout


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample")
    home = tmp / "dagster_home"
    home.mkdir()
    first, second = tmp / "first.duckdb", tmp / "second.duckdb"
    output = journey_run(first, home)
    journey_run(second, home)
    journey_run(second, home)  # the same files again into the same warehouse
    return {"output": output, "first": first, "second": second, "tmp": tmp, "home": home}

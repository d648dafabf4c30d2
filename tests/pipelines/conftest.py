"""Helpers for tests that run the `journey` command as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

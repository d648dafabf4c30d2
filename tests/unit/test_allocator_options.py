"""DuckDB's allocator options (journey_analytics/__init__.py): importing the package before duckdb
makes DuckDB's jemalloc keep freed memory, unless the environment chose otherwise.

jemalloc reports the options it runs with when asked to print its statistics at exit
(`stats_print:true`), which each check adds to whatever the package set."""

import os
import re
import subprocess
import sys

ADD_STATS = "os.environ['DUCKDB_JE_MALLOC_CONF'] = ','.join(filter(None, [os.environ.get('DUCKDB_JE_MALLOC_CONF'), 'stats_print:true']))"
PACKAGE_FIRST = f"import journey_analytics\n{ADD_STATS}\nimport duckdb"


def _decay(imports: str, conf: str | None = None) -> tuple[int, int]:
    """(dirty, muzzy) decay in ms that DuckDB's jemalloc runs with in a new Python process that
    runs `imports`, with DUCKDB_JE_MALLOC_CONF set to `conf` (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "DUCKDB_JE_MALLOC_CONF"}
    if conf is not None:
        env["DUCKDB_JE_MALLOC_CONF"] = conf
    code = f"import os\n{imports}\nduckdb.connect().execute('select 1').fetchall()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    report = done.stdout + done.stderr
    dirty = re.search(r"opt\.dirty_decay_ms: (-?\d+)", report)
    muzzy = re.search(r"opt\.muzzy_decay_ms: (-?\d+)", report)
    assert dirty and muzzy, report[:2000]
    return int(dirty.group(1)), int(muzzy.group(1))


def test_importing_the_package_first_sets_them():
    assert _decay(PACKAGE_FIRST) == (-1, -1)


def test_the_dagster_code_location_sets_them_before_it_imports_duckdb():
    assert _decay(f"import pipelines\n{ADD_STATS}\nimport duckdb") == (-1, -1)


def test_without_the_package_duckdb_returns_freed_memory_after_its_decay():
    dirty, muzzy = _decay(f"{ADD_STATS}\nimport duckdb")
    assert dirty > 0 and muzzy > 0


def test_options_already_in_the_environment_are_kept():
    assert _decay(PACKAGE_FIRST, "dirty_decay_ms:2500,muzzy_decay_ms:2500") == (2500, 2500)

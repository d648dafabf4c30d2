"""journey-analytics: raw web, CRM, e-mail and store logs into cross-channel customer journeys.

Importing the package sets the options of DuckDB's memory allocator, unless the environment
already sets them. DuckDB's bundled jemalloc reads them from DUCKDB_JE_MALLOC_CONF once, when
duckdb is first imported; so `journey`, the Dagster code location (pipelines/__init__.py) and the
benchmarks import this package before duckdb. By default jemalloc hands memory freed by one statement
back to the system after about a second, and the next statement faults the same amount back in,
page by page. These options keep freed memory for reuse instead (docs/performance.md, "DuckDB's
freed memory"). DuckDB's own memory limit still bounds what it holds in use.
"""

import os

#: jemalloc options for DuckDB (its defaults: dirty_decay_ms and muzzy_decay_ms 1000)
DUCKDB_ALLOCATOR_OPTIONS = "dirty_decay_ms:-1,muzzy_decay_ms:-1"

os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", DUCKDB_ALLOCATOR_OPTIONS)

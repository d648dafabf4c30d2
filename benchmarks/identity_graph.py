"""Identity-graph benchmark: our set-based connected components against SciPy on the same graph.

    uv run --locked --group bench python benchmarks/identity_graph.py --identifiers 10000000

Builds a random identity graph shaped like real ones (most persons hold 1-5 identifiers, a few
hold hundreds; each component is a random tree plus extra links), runs
journey_analytics.identity.connected_components (large-star / small-star rounds in DuckDB, from
string identifiers, as the pipeline does) and scipy.sparse.csgraph.connected_components (the
graph floor, from integer arrays), checks the two partitions are equal, and writes the medians and
their ratio to benchmarks/results/identity_graph.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

# journey_analytics before duckdb: importing it sets DuckDB's allocator options, as the pipeline runs
from journey_analytics import identity
import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from journey_analytics.settings import load_settings
from journey_analytics.warehouse import connect

RESULTS = Path(__file__).parent / "results"


def random_graph(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges (src, dst) over nodes 0..n-1: components of geometric sizes, trees plus 20% extra links."""
    rng = np.random.default_rng(seed)
    sizes = rng.geometric(0.35, size=n)  # mean ~2.9 identifiers per person
    sizes[rng.random(n) < 0.0005] = rng.integers(100, 2000, size=int((rng.random(n) < 0.0005).sum()) or 1)[0]
    sizes = sizes[np.cumsum(sizes) <= n]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owner_start = np.repeat(starts, sizes)
    position = np.arange(owner_start.size) - owner_start
    nodes = np.arange(owner_start.size)
    # tree: every node but the first of its component links to a random earlier node of it
    has_parent = position > 0
    parents = owner_start[has_parent] + (rng.random(has_parent.sum()) * position[has_parent]).astype(np.int64)
    src, dst = nodes[has_parent], parents
    extra = rng.random(src.size) < 0.2
    src = np.concatenate([src, src[extra]])
    dst = np.concatenate([dst, owner_start[has_parent][extra] + (rng.random(extra.sum()) * position[has_parent][extra]).astype(np.int64)])
    order = rng.permutation(owner_start.size)  # node numbers unrelated to components
    return order[src], order[dst], owner_start.size


def ours(src: np.ndarray, dst: np.ndarray, n: int, workdir: Path) -> tuple[float, np.ndarray, int]:
    settings = load_settings(warehouse_path=workdir / "bench.duckdb", duckdb_temp_dir=workdir / "spill")
    (workdir / "bench.duckdb").unlink(missing_ok=True)
    names = np.char.add("anonymous_id:", np.char.zfill(np.arange(n).astype(str), 9))
    links = pa.table({"left_identifier": names[src], "right_identifier": names[dst],
                      "left_type": pa.array(["anonymous_id"] * src.size), "right_type": pa.array(["anonymous_id"] * src.size)})
    sightings = pa.table({"identifier": names, "identifier_type": pa.array(["anonymous_id"] * n)})
    with connect(settings) as con:
        for table, rows in (("usable_links", links), ("identifier_sightings", sightings)):
            con.register("rows", rows)
            con.execute(f"create table identity.{table} as select * from rows")
            con.unregister("rows")
        del links, sightings
        started = time.perf_counter()
        rounds = identity.connected_components(con)
        elapsed = time.perf_counter() - started
        labels = con.sql(
            "select cast(substr(identifier, 14) as bigint) as node, component from identity.cc_components order by node"
        ).to_arrow_table()
    return elapsed, labels.column("component").to_numpy(), rounds


def floor(src: np.ndarray, dst: np.ndarray, n: int) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return time.perf_counter() - started, labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    con = duckdb.connect()
    con.register("pairs", pa.table({"a": a, "b": b}))
    bad = con.execute(
        "select (select count(*) from (select a from pairs group by a having count(distinct b) > 1)) + "
        "(select count(*) from (select b from pairs group by b having count(distinct a) > 1))"
    ).fetchall()[0][0]
    return bad == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identifiers", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    src, dst, n = random_graph(args.identifiers, args.seed)
    ours_times, floor_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            t_floor, labels_floor = floor(src, dst, n)
            t_ours, labels_ours, rounds = ours(src, dst, n, Path(tmp))
            floor_times.append(t_floor)
            ours_times.append(t_ours)
    equal = same_partition(labels_ours, labels_floor)
    result = {
        "identifiers": int(n),
        "links": int(src.size),
        "components": int(len(np.unique(labels_floor))),
        "runs": args.runs,
        "star_rounds": rounds,
        "ours_median_s": round(statistics.median(ours_times), 3),
        "scipy_median_s": round(statistics.median(floor_times), 3),
        "ratio": round(statistics.median(ours_times) / statistics.median(floor_times), 2),
        "same_components": equal,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, DuckDB {duckdb.__version__}",
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"identity_graph_{n}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(
        "| " + " | ".join(result) + " |\n|" + "---|" * len(result) + "\n| " + " | ".join(str(v) for v in result.values()) + " |\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

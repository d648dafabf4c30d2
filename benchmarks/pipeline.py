"""Pipeline benchmark: the whole pipeline on generated data, with the floors beside it.

    uv run --locked --group bench python benchmarks/pipeline.py --events 1000000 --runs 1

1. Generates a seeded landing folder of about --events events with journey_analytics.generator
   (cached under the work folder, so later runs reuse it; generation time is reported apart).
2. Runs the pipeline as `journey run` does (every Dagster asset, in process, fresh warehouse and
   Dagster home per run), timing every step from Dagster's step events, and the peak memory.
3. Runs the floors on the same data in the same process:
   * parse floor: DuckDB's bare read_json / read_csv of the same landing files into tables;
   * engine floor: one DuckDB query sorting the stream's events by (person, occurred_at) with
     row_number and lag.
4. Writes benchmarks/results/pipeline_<events>.{md,json}: medians, events per second, and the
   ratios of ingestion to the parse floor and of the transformations to the engine floor.

Not yet here (issue 6): the graph floor inside this command (benchmarks/identity_graph.py runs it
apart), the pandas alternative, 10M and 100M runs, incremental runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from journey_analytics.generator import GeneratorConfig, generate  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: events per simulated person over 60 days on the generator's defaults (the bundled sample: 19,669 / 1,000)
EVENTS_PER_PERSON = 19.7
DAYS = 60


class StepTimes:
    """A runner.Progress that records each Dagster step's wall time."""

    def __init__(self):
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = defaultdict(float)

    def start(self, total_steps: int) -> None:
        pass

    def step(self, step_key: str, status: str) -> None:
        now = time.perf_counter()
        if status == "started":
            self.started[step_key] = now
        elif step_key in self.started:
            self.seconds[step_key] += now - self.started.pop(step_key)


def landing_for(events: int, seed: int, workdir: Path) -> tuple[Path, float]:
    customers = max(1, round(events / EVENTS_PER_PERSON))
    out = workdir / f"gen_{customers}_{DAYS}_{seed}"
    done = out / ".complete"
    if done.exists():
        return out / "landing", float(done.read_text())
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    generate(GeneratorConfig(customers=customers, days=DAYS, seed=seed), out)
    seconds = time.perf_counter() - began
    done.write_text(f"{seconds:.3f}")
    return out / "landing", seconds


def pipeline_run(landing: Path, workdir: Path) -> dict:
    warehouse, home = workdir / "bench.duckdb", workdir / "dagster_home"
    for path in (warehouse, Path(str(warehouse) + ".wal"), workdir / "published"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    shutil.rmtree(home, ignore_errors=True)
    os.environ.update({"JOURNEY_LANDING_DIR": str(landing), "JOURNEY_WAREHOUSE_PATH": str(warehouse), "DAGSTER_HOME": str(home)})
    from journey_analytics.cli import prepare_dagster_home  # noqa: PLC0415
    from journey_analytics import runner  # noqa: PLC0415

    prepare_dagster_home()
    steps = StepTimes()
    began = time.perf_counter()
    outcome = runner.run_all(progress=steps)
    seconds = time.perf_counter() - began
    if outcome.failed_checks:
        raise SystemExit(f"checks failed: {outcome.failed_checks}")
    return {"seconds": seconds, "steps": dict(steps.seconds), "events": outcome.event_count, "warehouse": warehouse}


def parse_floor(landing: Path) -> float:
    """DuckDB's bare readers over the same files, one table per source and kind."""
    groups = {
        "web_jsonl": ("web/*/*.jsonl*", "json"), "web_csv": ("web/*/*.csv*", "csv"),
        "email": ("email/*/*.json*", "json"),
        "crm_contacts": ("crm/*/contacts*.csv*", "csv"), "crm_activities": ("crm/*/activities*.csv*", "csv"),
        "crm_deals": ("crm/*/deals*.csv*", "csv"),
        "store_transactions": ("store/*/transactions*.csv*", "csv"), "store_visits": ("store/*/visits*.csv*", "csv"),
        "store_stores": ("store/*/stores*.csv*", "csv"),
    }
    con = duckdb.connect()
    began = time.perf_counter()
    for name, (pattern, kind) in groups.items():
        files = sorted(str(p) for p in landing.glob(pattern))
        if not files:
            continue
        reader = "read_json_auto" if kind == "json" else "read_csv_auto"
        con.execute(f"create table {name} as select * from {reader}($files, union_by_name = true)", {"files": files})
    seconds = time.perf_counter() - began
    con.close()
    return seconds


def engine_floor(warehouse: Path) -> float:
    con = duckdb.connect(str(warehouse), read_only=True)
    began = time.perf_counter()
    con.execute("""
        create temp table floor as
        select person_id, occurred_at, event_key,
               row_number() over (partition by person_id order by occurred_at, event_key) as n,
               lag(occurred_at) over (partition by person_id order by occurred_at, event_key) as previous_at
        from journeys.customer_stream""")
    seconds = time.perf_counter() - began
    con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "journey-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    landing, generation = landing_for(args.events, args.seed, args.workdir)
    files = sum(1 for p in landing.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    runs, parse, engine = [], [], []
    for _ in range(args.runs):
        run = pipeline_run(landing, args.workdir)
        runs.append(run)
        parse.append(parse_floor(landing))
        engine.append(engine_floor(run["warehouse"]))
    events = runs[0]["events"]
    median = statistics.median
    step_names = sorted(runs[0]["steps"])
    per_step = {s: median(r["steps"].get(s, 0.0) for r in runs) for s in step_names}
    ingestion = median(sum(v for k, v in r["steps"].items() if k.startswith("ingest_")) for r in runs)
    transform = median(sum(v for k, v in r["steps"].items() if not k.startswith("ingest_")) for r in runs)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__,
                    "platform": platform.platform()},
        "events": events, "landing_files": files, "landing_bytes": size, "runs": args.runs, "generation_seconds": generation,
        "end_to_end_seconds": median(r["seconds"] for r in runs),
        "events_per_second": events / median(r["seconds"] for r in runs),
        "ingestion_seconds": ingestion, "parse_floor_seconds": median(parse), "ingestion_vs_parse_floor": ingestion / median(parse),
        "transform_seconds": transform, "engine_floor_seconds": median(engine), "transform_vs_engine_floor": transform / median(engine),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "step_seconds": per_step,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"pipeline_{args.events}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Pipeline benchmark, {events:,} events ({result['date']})", "",
        f"Machine: {result['machine']['cores']} cores, Python {result['machine']['python']}, DuckDB {result['machine']['duckdb']}. "
        f"Median of {args.runs} run(s). Landing: {files:,} files, {size / 2**20:.0f} MiB (generated in {generation:.0f} s).", "",
        "| measure | seconds | floor (s) | ratio |", "|---|---:|---:|---:|",
        f"| end to end | {result['end_to_end_seconds']:.1f} | | |",
        f"| ingestion vs parse floor | {ingestion:.1f} | {median(parse):.1f} | {result['ingestion_vs_parse_floor']:.1f} |",
        f"| staged events to marts vs engine floor | {transform:.1f} | {median(engine):.2f} | {result['transform_vs_engine_floor']:.1f} |",
        "", f"Events per second end to end: {result['events_per_second']:,.0f}. Peak RSS: {result['peak_rss_gib']:.2f} GiB.", "",
        "| step | seconds |", "|---|---:|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in sorted(per_step.items(), key=lambda kv: -kv[1])),
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

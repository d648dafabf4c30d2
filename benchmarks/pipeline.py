"""Pipeline benchmark: the whole pipeline on generated data, with the floors beside it.

    uv run --locked --group bench python benchmarks/pipeline.py --events 1000000 --runs 1

1. Generates a seeded landing folder of about --events events with journey_analytics.generator
   (cached under the work folder, so later runs reuse it; generation time is reported apart).
2. Runs the pipeline as `journey run` does (every Dagster asset, in one process of its own, fresh
   warehouse and Dagster home per run), timing every step from Dagster's step events, with the peak RSS of
   each step and of the pipeline alone (sampled on a thread; the baselines run after it), and
   on disk the peak of DuckDB's spill folder per step and of the warehouse file with it.
3. Runs the floors on the same data (the parse floor before the pipeline, the others after it),
   each in a process of its own too: every measurement starts from a new Python process, as
   `journey run` does, not from the heap an earlier one left behind (see `isolated`):
   * parse floor: DuckDB's bare read_json / read_csv of the same landing files into tables (in
     chunks of the pipeline's batch size);
   * engine floor: one DuckDB query sorting the stream's events by (person, occurred_at) with
     row_number and lag;
   * graph floor: scipy.sparse.csgraph.connected_components on the run's identity graph (the
     identifiers of identity.identity_map and the merged links of identity.link_decisions as
     integer arrays), checked to find the same components as our persons, against the
     resolve_identities step;
   * hand-written alternative: vectorised pandas (sort, groupby/shift/cumsum, merge; no per-row
     apply) of what an analyst would write for what our customer_stream and event_stages steps
     work out over the same staged events and persons -- the stream's order and neighbours,
     activity occurrences, sessions, journeys, the events' stages and the persons reaching each
     stage -- checked equal to ours, against those two steps; the time of its sessions and stages
     alone (earlier results' baseline) is reported beside it.
4. A daily increment: a warehouse built from every delivery date but the last, then `journey run`
   timed when the last date arrives (each in a process of its own), against the end-to-end time of
   a whole build.
5. Writes benchmarks/results/pipeline_<events>.{md,json}: medians, events per second, and the
   ratios of ingestion to the parse floor and of the transformations to the engine floor.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# before duckdb: the package sets DuckDB's allocator options (journey_analytics/__init__.py), and
# every process this one starts inherits them, so the floors run with the pipeline's options too
import journey_analytics  # noqa: E402,F401
import duckdb  # noqa: E402

from journey_analytics.generator import GeneratorConfig, generate  # noqa: E402
from journey_analytics.ingest.landing import BATCH_BYTES, chunks, landed_weight  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: events per simulated person over 60 days on the generator's defaults (the bundled sample: 19,669 / 1,000)
EVENTS_PER_PERSON = 19.7
DAYS = 60
#: What a run needs per event, measured at 10M events (9,982,106; docs/performance.md): the
#: generated folder 1.6 GB, the warehouse file 5.4 GB (5.56 GB of table blocks), and the process
#: 18.65 GiB at its peak in the pandas baseline, which holds the staged events in pandas (22.6 GiB
#: once that baseline covered the stream's other columns; run alone after it freed its
#: intermediates before comparing, 17.1 GiB; the whole process since then not measured).
#: At 100M (99,901,543 events, session 44) the generated folder took about 165 bytes an event
#: (landing 12.07 GB, truth about 4.4 GB) and the warehouse file and DuckDB's spill folder
#: together 61.10 GiB at their peak, 657 bytes an event (580 had been the 10M warehouse file's).
GENERATED_BYTES_PER_EVENT = 170
WAREHOUSE_BYTES_PER_EVENT = 660
PANDAS_BYTES_PER_EVENT = 2_000


def isolated(function, *args):
    """`function(*args)` run in a new Python process (multiprocessing's spawn), its result returned.

    Each pipeline run, floor and pandas alternative runs this way, as `journey run` runs in a
    process of its own. In one process the daily increment came after three builds, their floors
    and the pandas frames: at 10M events session 34's increment took 179.7 s with every step slower
    than before (the email ingestion 3.8 s, staging.events 11.3 s, identity 42.0 s), where the same
    increment in a process of its own took 104.0 s (email 1.9 s, staging.events 7.1 s, identity
    17.6 s), and session 35's benchmark, this way, 107.9 s. What in the shared process slowed it
    was not found (docs/performance-history.md, "10M events, session 35")."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def current_rss() -> int | None:
    """The process's resident memory now, in bytes (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def disk_bytes(paths: list[Path]) -> int:
    """Bytes the files at `paths` take on disk (allocated blocks, so a sparse file counts what it
    holds); a folder counts the files directly in it (DuckDB's spill folder is flat)."""
    total = 0
    for path in paths:
        try:
            files = [entry.path for entry in os.scandir(path) if entry.is_file(follow_symlinks=False)] if path.is_dir() else [path]
        except OSError:  # not there (yet, or any more)
            continue
        for file in files:
            try:
                total += os.stat(file).st_blocks * 512
            except OSError:
                continue
    return total


class MemorySampler:
    """Samples the process's RSS every `interval` seconds on a thread, so that a peak can be told
    apart per step and for the pipeline alone (ru_maxrss is one high-water mark for the whole
    process, baselines included). Where /proc is missing it falls back to ru_maxrss.

    With `spill` and `warehouse` (lists of paths) it samples their bytes on disk too: DuckDB's
    spill folder (its peak since the last reset, and overall), and the spill folder together with
    the warehouse file and its write-ahead log (their joint peak overall)."""

    def __init__(self, interval: float = 0.05, spill: list[Path] = (), warehouse: list[Path] = ()):
        self.interval = interval
        self.spill_paths, self.warehouse_paths = list(spill), list(warehouse)
        self.peak = self.overall = 0
        self.spill_peak = self.spill_overall = self.disk_overall = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> int:
        rss = current_rss()
        if rss is None:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak = max(self.peak, rss)
        self.overall = max(self.overall, rss)
        if self.spill_paths or self.warehouse_paths:
            spill = disk_bytes(self.spill_paths)
            self.spill_peak = max(self.spill_peak, spill)
            self.spill_overall = max(self.spill_overall, spill)
            self.disk_overall = max(self.disk_overall, spill + disk_bytes(self.warehouse_paths))
        return rss

    def reset(self) -> None:
        """Start new peaks from what is held now."""
        self.peak = self.spill_peak = 0
        self.sample()

    def __enter__(self) -> MemorySampler:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


class StepTimes:
    """A runner.Progress that records each Dagster step's wall time, peak RSS and peak spill
    folder (steps run one at a time in process, so the sampler's peaks since a step started are
    that step's)."""

    def __init__(self, spill: list[Path] = (), warehouse: list[Path] = ()):
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.peak_bytes: dict[str, int] = defaultdict(int)
        self.spill_bytes: dict[str, int] = defaultdict(int)
        self.memory = MemorySampler(spill=spill, warehouse=warehouse)

    def start(self, total_steps: int) -> None:
        pass

    def step(self, step_key: str, status: str) -> None:
        now = time.perf_counter()
        if status == "started":
            self.started[step_key] = now
            self.memory.reset()
        elif step_key in self.started:
            self.seconds[step_key] += now - self.started.pop(step_key)
            self.memory.sample()
            self.peak_bytes[step_key] = max(self.peak_bytes[step_key], self.memory.peak)
            self.spill_bytes[step_key] = max(self.spill_bytes[step_key], self.memory.spill_peak)


def customers_for(events: int) -> int:
    return max(1, round(events / EVENTS_PER_PERSON))


def generated_folder(events: int, seed: int, workdir: Path) -> Path:
    """Where the generated landing folder for about `events` events is cached."""
    return workdir / f"gen_{customers_for(events)}_{DAYS}_{seed}"


def landing_for(events: int, seed: int, workdir: Path) -> tuple[Path, float]:
    customers = customers_for(events)
    out = generated_folder(events, seed, workdir)
    done = out / ".complete"
    if done.exists():
        return out / "landing", float(done.read_text())
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    generate(GeneratorConfig(customers=customers, days=DAYS, seed=seed), out)
    seconds = time.perf_counter() - began
    done.write_text(f"{seconds:.3f}")
    return out / "landing", seconds


def increment_run(landing: Path, workdir: Path) -> dict:
    """A daily run: the warehouse is built from every delivery date before the last full day
    (untimed), then that day arrives and `journey run` is timed again on the same warehouse. The
    last full day is the latest delivery date with at least half the average bytes of a date (the
    generator's last dates bring only a few late store and CRM files).

    The build and the daily run each run in a new process (`isolated`), as a scheduled daily run
    starts in a process of its own (Dagster launches each run in a new process; so does `journey
    run` from cron), not in the heap that the whole build before it left behind. That changes the
    peak memory it reports, not its time: at 10M events (session 40, alternating) 87.7 and 83.8 s
    in the build's process (peak RSS 6.84 and 6.79 GiB), 87.0 and 90.4 s in a process of its own
    (6.60 and 6.58 GiB)."""
    view = workdir / "increment_landing"
    shutil.rmtree(view, ignore_errors=True)
    size: dict[str, int] = defaultdict(int)
    for path in landing.glob("*/*/*"):
        size[path.parent.name] += path.stat().st_size
    average = sum(size.values()) / len(size)
    last = max(day for day, total in size.items() if total >= average / 2)
    days = sorted(day for day in size if day <= last)

    def link(day: str) -> None:
        for folder in landing.glob(f"*/{day}"):
            (view / folder.parent.name).mkdir(parents=True, exist_ok=True)
            (view / folder.parent.name / day).symlink_to(folder, target_is_directory=True)

    for day in days[:-1]:
        link(day)
    before = isolated(pipeline_run, view, workdir)
    link(last)
    after = isolated(daily_run, view, workdir)
    shutil.rmtree(view, ignore_errors=True)
    return {**after, "events_before": before["events"], "date": last}


def daily_run(landing: Path, workdir: Path) -> dict:
    """`journey run` timed on the warehouse and Dagster home that `pipeline_run` left in `workdir`,
    with what it decided or built again."""
    warehouse = use_run(landing, workdir)
    return {**timed_run(), "scope": increment_scope(warehouse)}


def increment_scope(warehouse: Path) -> dict:
    """What the daily run decided or built again, from its materialisations' metadata in the
    Dagster instance, beside the totals in the warehouse."""
    import dagster as dg  # noqa: PLC0415

    instance = dg.DagsterInstance.get()

    def metadata(*key: str) -> dict:
        event = instance.get_latest_materialization_event(dg.AssetKey(list(key)))
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()} if event else {}

    identity, persons, stream = metadata("identity", "identity_map"), metadata("journeys", "event_persons"), metadata("journeys", "customer_stream")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stream_persons, stream_events = con.execute(
            "select count(*) filter (where sequence_number = 1), count(*) from journeys.customer_stream").fetchall()[0]
    return {"mode": {"identity": identity.get("mode"), "event_persons": persons.get("mode"), "customer_stream": stream.get("mode")},
            "identifiers_resolved_again": identity.get("identifiers_resolved_again"), "identifiers": identity.get("identifiers"),
            "events_decided_again": persons.get("events_decided_again"), "events": stream_events,
            "persons_built_again": stream.get("persons_built_again"), "persons": stream_persons,
            "persons_continued": stream.get("persons_continued"),
            "stream_events_built_again": stream.get("events_built_again")}


def timed_run() -> dict:
    """`journey run` on the environment's landing folder, warehouse and Dagster home, each step timed."""
    from pipelines import runner  # noqa: PLC0415
    from journey_analytics.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    warehouse = settings.warehouse_path
    steps = StepTimes(spill=[settings.duckdb_temp_dir], warehouse=[warehouse, Path(f"{warehouse}.wal")])
    with steps.memory:
        began = time.perf_counter()
        outcome = runner.run_all(progress=steps)
        seconds = time.perf_counter() - began
    if outcome.failed_checks:
        raise SystemExit(f"checks failed: {outcome.failed_checks}")
    return {"seconds": seconds, "steps": dict(steps.seconds), "step_peak_bytes": dict(steps.peak_bytes),
            "peak_bytes": steps.memory.overall, "events": outcome.event_count, "step_spill_bytes": dict(steps.spill_bytes),
            "spill_peak_bytes": steps.memory.spill_overall, "disk_peak_bytes": steps.memory.disk_overall,
            "warehouse_bytes": disk_bytes([warehouse])}


def run_paths(workdir: Path) -> tuple[Path, Path]:
    """Where a run in `workdir` keeps its warehouse and its Dagster home."""
    return workdir / "bench.duckdb", workdir / "dagster_home"


def use_run(landing: Path, workdir: Path) -> Path:
    """Point this process's `journey run` at `landing` and at the warehouse and Dagster home of
    `workdir` (through the environment, as a user would); returns the warehouse's path."""
    warehouse, home = run_paths(workdir)
    os.environ.update({"JOURNEY_LANDING_DIR": str(landing), "JOURNEY_WAREHOUSE_PATH": str(warehouse), "DAGSTER_HOME": str(home)})
    return warehouse


def clear_run(workdir: Path) -> None:
    """Remove the last run's warehouse, published snapshot and Dagster home from `workdir`."""
    warehouse, home = run_paths(workdir)
    for path in (warehouse, Path(str(warehouse) + ".wal"), workdir / "published", home):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def pipeline_run(landing: Path, workdir: Path) -> dict:
    clear_run(workdir)
    warehouse = use_run(landing, workdir)
    from journey_analytics.cli import prepare_dagster_home  # noqa: PLC0415

    prepare_dagster_home()
    return {**timed_run(), "warehouse": warehouse}


#: DuckDB's JSON reader holds a buffer of about 32 MB per file of a scan: 562 files in one call
#: ran out of a 12 GB limit, 260 did not. The floor reads up to this many files a scan, as it has
#: since it was written, in chunks of BATCH_BYTES, so that its figures compare across sessions
#: (the pipeline reads chunks of landing.CHUNK_BYTES since session 50)
MAX_FILES_PER_READ = 250


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
    # into a database file beside the warehouse, as the pipeline writes one (and so it can spill)
    path = landing.parent.parent / "parse_floor.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path), config={"temp_directory": str(landing.parent.parent / "spill"), "memory_limit": "12GB",
                                            "preserve_insertion_order": False})
    began = time.perf_counter()
    for name, (pattern, kind) in groups.items():
        files = sorted(landing.glob(pattern))
        reader = "read_json_auto" if kind == "json" else "read_csv_auto"
        # in chunks of the pipeline's batch size: one read_json_auto over the 10M-event landing
        # folder runs out of memory even with a 12 GB limit
        for n, chunk in enumerate(chunks(files, [landed_weight(p) for p in files], BATCH_BYTES, MAX_FILES_PER_READ)):
            verb = f"create table {name} as" if n == 0 else f"insert into {name} by name"
            con.execute(f"{verb} select * from {reader}($files, union_by_name = true)", {"files": [str(p) for p in chunk]})
    seconds = time.perf_counter() - began
    con.close()
    path.unlink(missing_ok=True)
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


def graph_floor(warehouse: Path) -> tuple[float, bool]:
    """SciPy's connected components on our identity graph; (seconds, same components as ours)."""
    import numpy as np  # noqa: PLC0415
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    con = duckdb.connect(str(warehouse), read_only=True)
    # the persons' graph: every identifier a node, every merged link an edge
    con.execute("create temp table nodes as select identifier, person_id, row_number() over (order by identifier) - 1 as node "
                "from identity.identity_map")
    n = con.sql("select count(*) from nodes").fetchall()[0][0]
    edges = con.sql("""
        select l.node as src, r.node as dst
        from identity.link_decisions as d
        inner join nodes as l on l.identifier = d.left_identifier
        inner join nodes as r on r.identifier = d.right_identifier
        where d.decision = 'merged'""").fetchnumpy()
    ours = con.sql("select node, person_id as component from nodes order by node").fetchnumpy()
    con.close()
    began = time.perf_counter()
    graph = coo_matrix((np.ones(edges["src"].size, dtype=np.int8), (edges["src"], edges["dst"])), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    seconds = time.perf_counter() - began
    pairs = duckdb.connect()
    pairs.register("pairs", {"a": labels[ours["node"]], "b": ours["component"]})
    splits = pairs.sql("select (select count(*) from (select a from pairs group by a having count(distinct b) > 1)) + "
                       "(select count(*) from (select b from pairs group by b having count(distinct a) > 1))").fetchall()[0][0]
    return seconds, splits == 0 and len(ours["node"]) == n


#: the customer_stream columns the pandas alternative works out, compared with ours row by row
STREAM_COLUMNS = ("event_key", "person_id", "sequence_number", "previous_channel", "next_channel", "activity_occurrence",
                  "activity_repeated_at", "session_key", "journey_number", "journey_id", "is_journey_start")


def _same_rows(con: duckdb.DuckDBPyConnection, frame, table: str, columns: tuple[str, ...], rows_per_part: int = 2_000_000) -> bool:
    """Whether a pandas frame holds exactly the rows of `table` over `columns` (EXCEPT ALL both
    ways), compared in parts of about `rows_per_part` rows split by the hash of the first column,
    so that DuckDB's hash tables stay small beside the frames the process already holds."""
    con.register("theirs", frame)
    listed = ", ".join(columns)
    parts = max(1, len(frame) // rows_per_part)
    differ = 0
    for part in range(parts):
        where = f"where hash({columns[0]}) % $parts = $part"
        differ += con.execute(
            f"select (select count(*) from (select {listed} from theirs {where} except all select {listed} from {table} {where})) + "
            f"(select count(*) from (select {listed} from {table} {where} except all select {listed} from theirs {where}))",
            {"parts": parts, "part": part}).fetchall()[0][0]
    con.unregister("theirs")
    return differ == 0


def pandas_alternative(warehouse: Path, gap_seconds: int, max_session_seconds: int, journey_gap_seconds: int) -> dict:
    """What customer_stream and event_stages work out, in vectorised pandas: the stream's order,
    neighbours and activity occurrences, sessions, journeys, the events' stages and the persons
    reaching each stage, each checked equal to ours. The inputs are read from the warehouse before
    the clock starts. Returns the seconds for all of it, the seconds for sessions and stages alone
    (what earlier results timed), and whether every result equals ours."""
    import pandas as pd  # noqa: PLC0415

    con = duckdb.connect(str(warehouse), read_only=True)
    events = con.sql("""
        select p.person_id, e.event_key, e.occurred_at, e.source, coalesce(r.source_rank, 99) as source_rank, e.anonymous_id,
               e.activity, e.channel, e.touchpoint_type, e.attributes
        from staging.events as e
        inner join journeys.event_persons as p on p.event_key = e.event_key
        left join journeys.source_ranks as r on r.source = e.source""").df()
    rules = con.sql("select * from stages.stage_rules").df()
    purchases = [row[0] for row in con.execute("select activity from journeys.purchase_activities").fetchall()]

    began = time.perf_counter()
    df = events.sort_values(["person_id", "occurred_at", "source_rank", "event_key"], kind="stable")
    del events  # as an analyst's `events = events.sort_values(...)` would: the unsorted copy goes
    # sessions: a person's web events on one device until a gap, cut at the maximum length
    web = df[df["source"] == "web"].assign(device=lambda d: d["anonymous_id"].fillna(""))
    web = web.sort_values(["person_id", "device", "occurred_at", "source_rank", "event_key"], kind="stable")
    by_device = web.groupby(["person_id", "device"], sort=False)
    previous = by_device["occurred_at"].shift()
    starts = previous.isna() | ((web["occurred_at"] - previous).dt.total_seconds() > gap_seconds)
    web["visit"] = starts.astype("int64").groupby([web["person_id"], web["device"]], sort=False).cumsum()
    visit_start = web.groupby(["person_id", "device", "visit"], sort=False)["occurred_at"].transform("min")
    web["part"] = ((web["occurred_at"] - visit_start).dt.total_seconds() // max_session_seconds).astype("int64")
    web["session_key"] = "session:" + web.groupby(["person_id", "device", "visit", "part"], sort=False)["event_key"].transform("first")
    # stages: the rules matching each event (activity, channel, touchpoint type, n-th occurrence,
    # score); an event matching several stages belongs to the furthest
    by_activity = df.groupby(["person_id", "activity"], sort=False)
    df["activity_occurrence"] = by_activity.cumcount() + 1
    df["score"] = pd.to_numeric(df["attributes"].str.extract(r'"score":\s*"?(-?[0-9.eE+]+)', expand=False), errors="coerce")
    m = df[["person_id", "event_key", "activity", "channel", "touchpoint_type", "activity_occurrence", "score"]].merge(
        rules, on="activity", suffixes=("", "_rule"))
    ok = ((m["channel_rule"].isna() | (m["channel_rule"] == m["channel"]))
          & (m["touchpoint_type_rule"].isna() | (m["touchpoint_type_rule"] == m["touchpoint_type"]))
          & (m["min_occurrence"].isna() | (m["activity_occurrence"] >= m["min_occurrence"]))
          & (m["max_occurrence"].isna() | (m["activity_occurrence"] <= m["max_occurrence"]))
          & (m["min_score"].isna() | (m["score"] >= m["min_score"]))
          & (m["max_score"].isna() | (m["score"] <= m["max_score"])))
    stages = m[ok].sort_values(["stage_model", "event_key", "stage_index"]).drop_duplicates(["stage_model", "event_key"], keep="last")
    reach = stages.groupby(["stage_model", "stage"])["person_id"].nunique()
    sessions_and_stages = time.perf_counter() - began
    # the rest of the stream: order, neighbours, the activity's next time, journeys (a journey
    # starts at a person's first event, after a purchase, or after a gap)
    by_person = df.groupby("person_id", sort=False)
    df["sequence_number"] = by_person.cumcount() + 1
    df["previous_channel"] = by_person["channel"].shift()
    df["next_channel"] = by_person["channel"].shift(-1)
    df["activity_repeated_at"] = by_activity["occurred_at"].shift(-1)
    previous_at = by_person["occurred_at"].shift()
    starts = (previous_at.isna() | by_person["activity"].shift().isin(purchases)
              | ((df["occurred_at"] - previous_at).dt.total_seconds() > journey_gap_seconds))
    df["journey_number"] = starts.astype("int64").groupby(df["person_id"], sort=False).cumsum()
    df["journey_id"] = df["person_id"] + ":" + df["journey_number"].astype(str)
    df["is_journey_start"] = starts
    df["session_key"] = web["session_key"]  # aligned on the index (web's rows are df's), null off the web
    seconds = time.perf_counter() - began
    # off the clock: what the comparisons below do not need goes before they run (at 10M events
    # the process held 22.6 GiB with all of it kept)
    del web, m, ok, by_device, by_person, by_activity, previous, previous_at, starts, visit_start

    # every result is compared in DuckDB against our tables, so none of ours is held in pandas
    same_stream = _same_rows(con, df, "journeys.customer_stream", STREAM_COLUMNS)
    same_stages = _same_rows(con, stages, "stages.event_stages", ("stage_model", "event_key", "stage", "person_id"))
    same_reach = _same_rows(con, reach.rename("persons").reset_index(),
                            "(select stage_model, stage, count(distinct person_id) as persons from stages.event_stages group by all)",
                            ("stage_model", "stage", "persons"))
    con.close()
    same = bool(same_stream and same_stages and same_reach)
    return {"seconds": seconds, "sessions_and_stages_seconds": sessions_and_stages, "same": same}


def step_table(result: dict) -> list[str]:
    """The results' table of steps, slowest first: each step's seconds (the builds' median), peak
    RSS and peak spill folder (the highest of the builds'), and the same three in the daily
    increment where it ran."""
    increment = "increment_step_seconds" in result
    head = "| step | seconds | peak RSS (GiB) | peak spill (GiB) |" + (
        " increment (s) | increment peak RSS (GiB) | increment peak spill (GiB) |" if increment else "")
    lines = [head, "|---|" + "---:|" * (6 if increment else 3)]
    for name, seconds in sorted(result["step_seconds"].items(), key=lambda kv: -kv[1]):
        line = f"| {name} | {seconds:.2f} | {result['step_peak_rss_gib'][name]:.2f} | {result['step_spill_peak_gib'][name]:.2f} |"
        if increment:
            figures = (result["increment_step_seconds"].get(name), result["increment_step_peak_rss_gib"].get(name),
                       result["increment_step_spill_peak_gib"].get(name))
            line += "".join(" |" if figure is None else f" {figure:.2f} |" for figure in figures)
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-increment", action="store_true", help="skip the daily-increment measurement (two more builds)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "journey-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    cached = (generated_folder(args.events, args.seed, args.workdir) / ".complete").exists()
    need = args.events * (WAREHOUSE_BYTES_PER_EVENT + (0 if cached else GENERATED_BYTES_PER_EVENT))
    free = shutil.disk_usage(args.workdir).free
    if need > free:
        parser.error(f"{args.events:,} events need about {need / 2**30:.0f} GiB free under {args.workdir} "
                     f"({'' if cached else 'the generated landing files and '}the warehouse); {free / 2**30:.0f} GiB are free")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    pandas_fits = args.events * PANDAS_BYTES_PER_EVENT <= 0.9 * memory
    landing, generation = landing_for(args.events, args.seed, args.workdir)
    files = sum(1 for p in landing.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    from journey_analytics.settings import load_settings  # noqa: PLC0415

    journeys = load_settings().journeys
    runs, parse, engine, graph, alternative, alternative_part = [], [], [], [], [], []
    same_components = same_results = True
    for _ in range(args.runs):
        # the parse floor first, on a disk without the last run's warehouse: at 100M events the
        # floor's tables and the warehouse would not fit on this machine's disk together
        clear_run(args.workdir)
        parse.append(isolated(parse_floor, landing))
        print(f"parse floor: {parse[-1]:.1f} s", flush=True)
        run = isolated(pipeline_run, landing, args.workdir)
        runs.append(run)
        # each run's figures as soon as it ends, so that a later failure (a floor out of disk or
        # memory) does not lose them
        print(f"pipeline run: {run['seconds']:.1f} s, {run['events']:,} events", flush=True)
        print(json.dumps({k: v for k, v in run.items() if k != "warehouse"}), flush=True)
        engine.append(isolated(engine_floor, run["warehouse"]))
        seconds, same = isolated(graph_floor, run["warehouse"])
        graph.append(seconds)
        same_components &= same
        if pandas_fits:
            pandas = isolated(pandas_alternative, run["warehouse"], journeys.session_gap_minutes * 60, journeys.max_session_hours * 3600,
                                        journeys.journey_gap_days * 86400)
            alternative.append(pandas["seconds"])
            alternative_part.append(pandas["sessions_and_stages_seconds"])
            same_results &= pandas["same"]
    # the build before the daily run and the daily run each in a process of their own (increment_run)
    increment = None if args.no_increment else increment_run(landing, args.workdir)
    if increment:
        print(f"daily increment: {increment['seconds']:.1f} s, {increment['events'] - increment['events_before']:,} new events", flush=True)
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
        "identity_seconds": median(r["steps"].get("resolve_identities", 0.0) for r in runs),
        "graph_floor_seconds": median(graph), "same_components": same_components,
        "covered_steps_seconds": median(r["steps"].get("journeys__customer_stream", 0.0) + r["steps"].get("stages__event_stages", 0.0) for r in runs),
        # not run where the staged events would not fit in pandas in this machine's memory
        "pandas_seconds": median(alternative) if alternative else None, "pandas_equal_results": same_results if alternative else None,
        # the part earlier results timed: sessions, the events' stages and the persons reaching each
        "pandas_sessions_and_stages_seconds": median(alternative_part) if alternative else None,
        **({"increment_seconds": increment["seconds"],
            "increment_share_of_events": (increment["events"] - increment["events_before"]) / increment["events"],
            "increment_vs_full": increment["seconds"] / median(r["seconds"] for r in runs),
            "increment_step_seconds": increment["steps"], "increment_scope": increment["scope"],
            # the daily run's own peaks, as the builds' below (its process only ran the daily run)
            "increment_peak_rss_gib": increment["peak_bytes"] / 2**30,
            "increment_step_peak_rss_gib": {s: b / 2**30 for s, b in increment["step_peak_bytes"].items()},
            "increment_spill_peak_gib": increment["spill_peak_bytes"] / 2**30,
            "increment_step_spill_peak_gib": {s: b / 2**30 for s, b in increment["step_spill_bytes"].items()},
            "increment_disk_peak_gib": increment["disk_peak_bytes"] / 2**30} if increment else {}),
        # the pipeline's own peak (sampled while it ran), and the highest of any process's, the
        # baselines' included (each ran in a process of its own: `isolated`)
        "peak_rss_gib": max(r["peak_bytes"] for r in runs) / 2**30,
        "process_peak_rss_gib": max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 2**20,
        "step_peak_rss_gib": {s: max(r["step_peak_bytes"].get(s, 0) for r in runs) / 2**30 for s in step_names},
        # on disk: DuckDB's spill folder at its peak (per step and overall), the warehouse file at
        # the end, and the two together at their peak while the pipeline ran
        "spill_peak_gib": max(r["spill_peak_bytes"] for r in runs) / 2**30,
        "step_spill_peak_gib": {s: max(r["step_spill_bytes"].get(s, 0) for r in runs) / 2**30 for s in step_names},
        "warehouse_gib": max(r["warehouse_bytes"] for r in runs) / 2**30,
        "disk_peak_gib": max(r["disk_peak_bytes"] for r in runs) / 2**30,
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
        f"| identity resolution vs graph floor (same components: {'yes' if same_components else 'NO'}) | {result['identity_seconds']:.1f} "
        f"| {median(graph):.2f} | {result['identity_seconds'] / median(graph):.1f} |",
        (f"| customer_stream + event_stages vs pandas (equal results: {'yes' if same_results else 'NO'}) | {result['covered_steps_seconds']:.1f} "
         f"| {median(alternative):.2f} | {result['covered_steps_seconds'] / median(alternative):.2f} |\n"
         f"| the same, against pandas' sessions and stages alone (earlier results' baseline) | {result['covered_steps_seconds']:.1f} "
         f"| {median(alternative_part):.2f} | {result['covered_steps_seconds'] / median(alternative_part):.2f} |" if alternative else
         f"| customer_stream + event_stages vs pandas (not run: it would need about {args.events * PANDAS_BYTES_PER_EVENT / 2**30:.0f} GiB "
         f"of this machine's {memory / 2**30:.0f} GiB) | {result['covered_steps_seconds']:.1f} | | |"),
        *([f"| daily increment ({result['increment_share_of_events']:.1%} new events, delivery date {increment['date']}) vs end to end "
           f"| {increment['seconds']:.1f} | {result['end_to_end_seconds']:.1f} | {result['increment_vs_full']:.2f} |"] if increment else []),
        *(["", "The daily increment decided or built again: {identifiers_resolved_again:,} of {identifiers:,} identifiers, the persons of "
            "{events_decided_again:,} of {events:,} events, the streams of {persons_built_again:,} of {persons:,} persons "
            "({stream_events_built_again:,} events; {persons_continued:,} of those persons continued from their last rows, "
            "the others built again whole).".format(**increment["scope"]),
            f"Its peak RSS: {result['increment_peak_rss_gib']:.2f} GiB; DuckDB's spill folder {result['increment_spill_peak_gib']:.2f} GiB "
            f"at its peak; the warehouse file and spill folder together {result['increment_disk_peak_gib']:.2f} GiB at their peak."]
          if increment else []),
        "", f"Events per second end to end: {result['events_per_second']:,.0f}. Peak RSS of the pipeline: {result['peak_rss_gib']:.2f} GiB "
        f"(of any of the benchmark's processes, baselines included: {result['process_peak_rss_gib']:.2f} GiB). On disk: the warehouse file "
        f"{result['warehouse_gib']:.2f} GiB at the end; DuckDB's spill folder {result['spill_peak_gib']:.2f} GiB at its peak; "
        f"the two together {result['disk_peak_gib']:.2f} GiB at their peak.", "",
        *step_table(result),
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""`journey run` frees the DuckDB pool slot of a run whose process was killed: otherwise every later
run waits for that slot for ever (found when a 100M-event run was stopped mid-step)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from journey_analytics.settings import PROJECT_ROOT
from pipelines.runner import HOST_TAG, PID_TAG, process_tags, release_dead_runs

POOL = "duckdb"


def _instance(tmp_path, monkeypatch) -> dg.DagsterInstance:
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return dg.DagsterInstance.get()


def _run(instance: dg.DagsterInstance, run_id: str, tags: dict, status=dg.DagsterRunStatus.STARTED) -> None:
    instance.add_run(DagsterRun(job_name="__ephemeral_asset_job__", run_id=run_id, status=status, tags=tags))


def test_a_dead_processs_run_is_failed_and_its_slot_freed(tmp_path, monkeypatch):
    instance = _instance(tmp_path, monkeypatch)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    here = socket.gethostname()
    try:
        _run(instance, "dead", {HOST_TAG: here, PID_TAG: str(ended.pid)})
        _run(instance, "alive", {HOST_TAG: here, PID_TAG: str(living.pid)})
        _run(instance, "elsewhere", {HOST_TAG: here + "-other", PID_TAG: str(ended.pid)})
        _run(instance, "untagged", {})
        _run(instance, "finished", {HOST_TAG: here, PID_TAG: str(ended.pid)}, status=dg.DagsterRunStatus.SUCCESS)
        assert storage.claim_concurrency_slot(POOL, "dead", "staging__events").is_claimed
        assert not storage.claim_concurrency_slot(POOL, "waiting", "stages__event_stages").is_claimed

        assert release_dead_runs(instance) == ["dead"]

        assert instance.get_run_by_id("dead").status == dg.DagsterRunStatus.FAILURE
        for run_id in ("alive", "elsewhere", "untagged"):
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        assert [slot.run_id for slot in storage.get_concurrency_info(POOL).claimed_slots] == []
        assert storage.claim_concurrency_slot(POOL, "waiting", "stages__event_stages").is_claimed
        assert release_dead_runs(instance) == []
    finally:
        living.kill()


def test_a_living_processs_slot_is_kept(tmp_path, monkeypatch):
    instance = _instance(tmp_path, monkeypatch)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _run(instance, "alive", {HOST_TAG: socket.gethostname(), PID_TAG: str(living.pid)})
        assert storage.claim_concurrency_slot(POOL, "alive", "staging__events").is_claimed
        assert release_dead_runs(instance) == []
        assert [slot.run_id for slot in storage.get_concurrency_info(POOL).claimed_slots] == ["alive"]
    finally:
        living.kill()


def test_runs_are_tagged_with_this_process(sample_run, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(sample_run["home"]))
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert runs and all(run.tags.get(HOST_TAG) == socket.gethostname() and run.tags.get(PID_TAG, "").isdigit() for run in runs)
    assert set(process_tags()) == {HOST_TAG, PID_TAG}

"""The Dagster UI, in headless Chromium, shows the asset graph by layer with a successful
materialisation, check results, descriptions and the marts' previews."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from journey_analytics.marts import MART_MODELS
from journey_analytics.settings import PROJECT_ROOT

from tests.browser import chromium_page, output_folder

LOCATION = "journey_analytics"  # [tool.dagster] code_location_name in pyproject.toml
GROUPS = ("ingestion", "staging", "identity", "journeys", "stages", "marts", "published")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(sample_run):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(sample_run["home"]), "JOURNEY_WAREHOUSE_PATH": str(sample_run["first"]), "JOURNEY_LANDING_DIR": ""}
    log = (sample_run["tmp"] / "webserver.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port)],
                              cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            assert server.poll() is None, (sample_run["tmp"] / "webserver.log").read_text()[-3000:]
            try:
                if urllib.request.urlopen(url + "/server_info", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("the Dagster webserver did not answer within 3 minutes")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _open(page, url: str, *texts: str, exact: bool = True):
    """Open a UI page and wait until each text is shown (the UI loads its data after the page)."""
    page.goto(url)
    for text in texts:
        page.get_by_text(text, exact=exact).filter(visible=True).first.wait_for(timeout=90_000)
    try:  # the community dialog Dagster shows on a first visit, over the page
        page.get_by_role("button", name="Skip").click(timeout=3_000)
    except Exception:  # noqa: BLE001 - not shown (already dismissed in this browser)
        pass


def test_the_asset_graph_lists_the_assets_with_a_successful_materialisation(webserver):
    with chromium_page(2000, 2400) as page:
        _open(page, f"{webserver}/asset-groups", "marts", "published")
        lineage = page.inner_text("body")
        assert all(group in lineage for group in GROUPS), lineage[:2000]

        _open(page, f"{webserver}/locations/{LOCATION}/asset-groups/marts", "funnel_conversion", "Materialized")
        graph = page.inner_text("body")
        page.screenshot(path=str(output_folder() / "dagster-asset-graph.png"))
        assert "Materialized" in graph and "Passed" in graph, graph[:3000]

        _open(page, f"{webserver}/locations/{LOCATION}/asset-groups/marts/list", "marts / funnel_conversion", "Materialized")
        listed = page.inner_text("body")
        assert [m for m in MART_MODELS if m not in listed] == []
        assert listed.count("Materialized") >= len(MART_MODELS)

        _open(page, f"{webserver}/runs", "Success")
        page.screenshot(path=str(output_folder() / "dagster-runs.png"))
        assert "Failure" not in page.inner_text("body")


def test_a_mart_page_shows_its_description_columns_preview_and_checks(webserver, sample_run):
    import duckdb  # noqa: PLC0415

    with duckdb.connect(str(sample_run["first"]), read_only=True) as con:
        entered = con.execute("select entered from marts.funnel_conversion where breakdown = 'all' and stage = 'consideration'").fetchall()[0][0]
    with chromium_page(1600, 2000) as page:
        _open(page, f"{webserver}/assets/marts/funnel_conversion", "Row count", "preview")
        body = page.inner_text("body")
        page.screenshot(path=str(output_folder() / "dagster-mart.png"), full_page=True)
        assert "How many units reached each funnel stage and converted to the next" in body
        assert "Units whose funnel chain reached this stage." in body, "column meanings from the data dictionary"

        page.get_by_text("[Show Markdown]").first.click()
        preview = page.get_by_role("dialog").first
        preview.locator("table").first.wait_for(timeout=30_000)
        rows = preview.locator("table tr")
        assert rows.count() == 11, "a header and the first 10 rows"
        assert f"consideration\t{entered}\t" in preview.inner_text(), "the preview shows the mart's numbers"
        page.keyboard.press("Escape")

        page.get_by_role("tab", name="Checks").click()
        page.get_by_text("counts_never_rise_down_the_stages", exact=True).filter(visible=True).first.wait_for(timeout=60_000)
        page.get_by_text("Succeeded", exact=True).nth(2).wait_for(timeout=60_000)  # the three checks' latest results
        page.get_by_text("Passed", exact=True).first.wait_for(timeout=60_000)
        checks = page.inner_text("body")
        page.screenshot(path=str(output_folder() / "dagster-checks.png"))
    assert checks.count("Succeeded") >= 3, checks[:3000]
    assert "\nFailed\n" not in checks, checks[:3000]

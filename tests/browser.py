"""Headless Chromium for the browser tests (Debian's `chromium`, driven by Playwright).

`.ci/run` installs Chromium when it is missing; JOURNEY_CHROMIUM points at another binary.
Screenshots go to the test output folder: test-output/ in the project (JOURNEY_TEST_OUTPUT to move it).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from journey_analytics.settings import PROJECT_ROOT

#: the flags this machine's closed network needs (no background connections, no GPU, no sandbox as root)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str:
    path = os.environ.get("JOURNEY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is not installed: `apt-get install chromium` (.ci/run does it) or set JOURNEY_CHROMIUM"
    return path


def output_folder() -> Path:
    folder = Path(os.environ.get("JOURNEY_TEST_OUTPUT") or PROJECT_ROOT / "test-output")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def chromium_page(width: int = 1280, height: int = 900):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()

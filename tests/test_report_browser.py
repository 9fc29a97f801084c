"""The HTML report in a real headless browser: figures load, nothing is fetched, nothing runs.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the ``playwright``
Python package (a dev dependency; it drives the system browser, it downloads
none). Without a browser the test is skipped with a reason, unless
``MIRAGE_REQUIRE_BROWSER=1`` (set by CI) turns the absence into a failure.
A screenshot is kept in ``$MIRAGE_TEST_ARTIFACTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from miragelab.tables import write_table

SCRIPT = "<script>window.__xss = 1</script>"
IMG = '<img src=x onerror="window.__xss = 2">'


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if executable is None or sync_playwright is None:
        reason = "no chromium executable" if executable is None else "playwright not installed"
        if os.environ.get("MIRAGE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required but {reason}")
        pytest.skip(f"{reason}: apt-get install chromium; pip install playwright")
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield instance
        instance.close()


def test_report_is_self_contained_and_escapes_model_output(
    browser, theory_scores: pd.DataFrame, tmp_path: Path
) -> None:
    scores = theory_scores.assign(family=SCRIPT, task=IMG)
    path = write_table(scores, tmp_path / "scores.parquet")
    out = tmp_path / "report"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "miragelab",
            "report",
            str(path),
            "--out",
            str(out),
            "--n-resamples",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    page_file = out / "report.html"

    page = browser.new_page()
    requests, console_errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")

    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 3  # emergence by metric, verdict pairs, top curves
    assert all(done and width > 0 for done, width in images)
    assert page.evaluate("window.__xss") is None  # neither payload ran
    text = page.inner_text("body")
    assert SCRIPT in text and IMG in text  # shown as text
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert console_errors == []

    artifacts = Path(os.environ.get("MIRAGE_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()

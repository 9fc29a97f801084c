"""The HTML report in a real headless browser at a phone's, a laptop's and a wide screen's
width: tables fit the page and no row is taller than 200 px, figures load, the page's
own script sorts and filters, nothing is fetched, no planted payload runs.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the ``playwright``
Python package (a dev dependency; it drives the system browser, it downloads
none). Without a browser the test is skipped with a reason, unless
``MIRAGE_REQUIRE_BROWSER=1`` (set by CI) turns the absence into a failure.
A full-page screenshot per width is kept in ``$MIRAGE_TEST_ARTIFACTS`` (default: the
test's tmp dir).
"""

from __future__ import annotations

import os
import re
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

    artifacts = Path(os.environ.get("MIRAGE_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        _check_page(browser, page_file, width, artifacts)


#: a phone, a laptop, a wide screen
WIDTHS = (390, 1400, 1920)

_LAYOUT = """() => {
  const page = document.documentElement.clientWidth;
  const tables = Array.from(document.querySelectorAll("table"));
  const rows = Array.from(document.querySelectorAll("tr"));
  return {
    page: page,
    scroll: document.documentElement.scrollWidth,
    widest: Math.max(...tables.map(t => t.getBoundingClientRect().width)),
    tallest: Math.max(...rows.map(r => r.getBoundingClientRect().height)),
    images: Array.from(document.images).filter(i => !i.closest("details:not([open])"))
      .map(i => [i.complete, i.naturalWidth]),
  };
}"""


def _column(box, name: str) -> list:  # noqa: ANN001
    """The sort keys of one column, numbers where they are numbers, top to bottom."""
    keys = box.evaluate(
        "(b, name) => { const i = Array.from(b.querySelectorAll('th')).findIndex("
        "h => h.textContent === name); return Array.from(b.querySelectorAll('tbody tr'))"
        ".map(r => r.cells[i].dataset.v); }",
        name,
    )
    try:
        return [float(k) for k in keys if k != ""]
    except ValueError:
        return keys


def _sorted(keys: list) -> list:
    """As the page sorts: numbers by value, text as the browser compares it (by code point
    here, which the test's names keep to)."""
    return sorted(keys)


def _visible_rows(box) -> list[str]:  # noqa: ANN001
    return box.evaluate(
        "b => Array.from(b.querySelectorAll('tbody tr')).filter(r => !r.hidden)"
        ".map(r => r.cells[0].textContent)"
    )


def _check_page(browser, page_file: Path, width: int, artifacts: Path) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests, console_errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")

    layout = page.evaluate(_LAYOUT)
    assert layout["widest"] <= layout["page"], (width, layout)  # no table wider than the page
    assert layout["scroll"] <= layout["page"], (width, layout)  # nor anything else
    assert layout["tallest"] <= 200, (width, layout)  # long text folds
    images = layout["images"]
    assert len(images) >= 3  # emergence by metric, verdict pairs, top curves
    assert all(done and natural > 0 for done, natural in images)
    assert page.evaluate("window.__xss") is None  # neither payload ran
    text = page.inner_text("body")
    assert SCRIPT in text and IMG in text  # shown as text

    # the page's own script (allowed by its hash): sorting and filtering change the rows
    k = page.evaluate(
        "() => Array.from(document.querySelectorAll('div.tbl')).findIndex(b => Array.from("
        "b.querySelectorAll('th')).some(h => h.textContent === 'p_value'))"
    )
    assert k >= 0
    box = page.locator("div.tbl").nth(k)
    for column in ("reason",):  # shown at every width
        header = box.locator("th").filter(has_text=re.compile(f"^{column}$")).first
        header.click()
        up = _column(box, column)
        header.click()
        down = _column(box, column)
        assert up == _sorted(up) and down == list(reversed(_sorted(down))), (column, up[:5])
        assert len(set(up)) > 1 and up != down  # the order changed
    shown = _visible_rows(box)
    box.locator("input[type=search]").fill("token_edit_distance")
    filtered = _visible_rows(box)
    assert 0 < len(filtered) < len(shown)
    box.locator("input[type=search]").fill("")
    assert len(_visible_rows(box)) == len(shown)

    # a verdict opens on a click: the figure of its curves (from the page's folder) and why
    verdict = page.locator("details.evidence").first
    verdict.locator("summary").click()
    figure = verdict.locator("img")
    figure.wait_for(state="visible")
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=figure.element_handle())
    reason = pd.read_csv(page_file.parent / "meta" / "meta_verdicts.csv")
    reason = reason.loc[reason["verdict"] != "smooth", "reason"].iloc[0]
    assert reason[:40] in verdict.inner_text()
    width_now = page.evaluate("document.documentElement.scrollWidth")
    assert width_now <= layout["page"]  # the open verdict still fits the page

    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert console_errors == []
    shot = artifacts / f"report-{width}px.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def test_report_pdf_has_every_section(theory_scores: pd.DataFrame, tmp_path: Path) -> None:
    """``mirage report --pdf``: the page printed by headless Chromium, every section in
    the PDF's text (read back by pypdf), folded text unfolded, more than one page."""
    if _chromium() is None:
        if os.environ.get("MIRAGE_REQUIRE_BROWSER") == "1":
            pytest.fail("browser test required but no chromium executable")
        pytest.skip("no chromium executable: apt-get install chromium")
    pypdf = pytest.importorskip("pypdf")
    path = write_table(theory_scores, tmp_path / "scores.parquet")
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "miragelab", "report", str(path), "--out", str(out),
         "--n-resamples", "100", "--pdf"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reader = pypdf.PdfReader(out / "report.pdf")
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert len(reader.pages) >= 2
    headings = re.findall(r"<h[12][^>]*>(.*?)</h[12]>", (out / "report.html").read_text())
    assert len(headings) >= 4  # title, summary, the meta-analysis, provenance
    for heading in headings:
        assert " ".join(heading.split()) in text, heading
    reason = pd.read_csv(out / "meta" / "meta_verdicts.csv")["reason"].iloc[0]
    assert " ".join(reason.split())[-40:] in text  # a folded cell prints whole


def test_report_pdf_without_chromium_says_so(theory_scores, tmp_path, monkeypatch, capsys):
    from conftest import mirage_code

    from miragelab.report import html

    monkeypatch.setattr(html, "find_chromium", lambda: None)
    path = write_table(theory_scores, tmp_path / "scores.parquet")
    out = tmp_path / "report"
    assert mirage_code("report", path, "--out", out, "--pdf") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--pdf needs Chromium" in line and not out.exists()


def test_a_table_of_many_rows_is_browsed_whole(browser, tmp_path: Path) -> None:
    """More rows than a page holds: all of them kept as data, the matching ones drawn as
    text (a planted payload included), the count of matches said."""
    from miragelab.report.html import render_report

    tasks = [f"task{i:03d}" for i in range(300)]
    tasks[123] = SCRIPT
    pd.DataFrame({"task": tasks, "value": range(300)}).to_csv(tmp_path / "many.csv", index=False)
    record = {"name": "part", "title": "Part", "status": "done", "verdict": "v",
              "tables": ["many.csv"]}  # fmt: skip
    page_file = tmp_path / "report.html"
    page_file.write_text(render_report("t", [record], tmp_path, {}), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    box = page.locator("div.tbl").first
    assert box.locator("tbody tr").count() == 200  # drawn at a time
    assert "300 of 300 rows match" in box.locator(".count").inner_text()
    box.locator("input").fill("task29")
    assert box.locator("tbody tr").count() == 10  # task290 .. task299
    box.locator("input").fill("window.__xss")
    assert box.locator("tbody tr").count() == 1 and SCRIPT in box.inner_text()
    assert page.evaluate("window.__xss") is None and errors == []
    box.locator("input").fill("")
    box.locator("th", has_text="value").click()
    box.locator("th", has_text="value").click()  # descending
    assert box.locator("tbody tr").first.locator("td").nth(1).inner_text() == "299"
    page.close()

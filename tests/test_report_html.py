"""The report page's tables without a browser: what a cell shows, which columns a table
keeps, and the one script the page's Content-Security-Policy allows (by its hash)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np
import pandas as pd

from miragelab.report.html import (
    INF_NOTE,
    MAX_COLUMNS,
    SCRIPT,
    _cell,
    reader_columns,
    render_report,
)


def test_cells_show_three_significant_digits_infinity_and_folded_text():
    assert _cell(1234.5678)[0] == "1.23e+03" and _cell(0.012345)[0] == "0.0123"
    assert _cell(42)[0] == "42" and _cell(np.int64(7))[0] == "7"
    assert _cell(float("nan")) == ("", "", "") and _cell(None) == ("", "", "")
    shown, key, css = _cell(float("inf"))
    assert "∞" in shown and INF_NOTE.split(":")[0] in shown and css == "num"
    assert float(key) > 1e300  # sorts after every finite number
    long = "harsh jump from 1e8 to 1e9 carries 90% of its rise <b>" + "x" * 80
    shown, key, _ = _cell(long)
    assert shown.startswith("<details><summary>") and "&lt;b&gt;" in shown and "<b>" not in shown
    assert key == long


def test_tables_keep_what_a_reader_needs():
    frame = pd.DataFrame(
        {
            "task": ["a"], "family": ["f"], "axis": ["params"], "model": [None],
            "harsh_metric": ["exact_match"], "soft_metric": ["ce"], "preference": [0],
            "label": ["mirage"], "statistic": [1.0], "p_value": [0.2], "break_at": [1e9],
            "noise": ["known"], "reason": ["because"],
        }
    )  # fmt: skip
    columns = reader_columns(frame)
    assert len(columns) <= MAX_COLUMNS and columns[-1] == "reason"
    assert {"task", "family", "label", "p_value"} <= set(columns)
    assert "model" not in columns  # empty


def test_the_page_allows_its_own_script_and_no_other(tmp_path):
    table = pd.DataFrame({"task": ["t<script>x</script>", "u"], "value": [1.0, np.inf]})
    table.to_csv(tmp_path / "t.csv", index=False)
    record = {"name": "part", "title": "Part", "status": "done", "verdict": "v",
              "tables": ["t.csv"]}  # fmt: skip
    page = render_report("title", [record], tmp_path, {"python": "3.11"})
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert scripts == [SCRIPT]  # the planted one is text
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    (policy,) = re.findall(r"Content-Security-Policy' content=\"([^\"]+)\"", page)
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline'; script" in policy  # styles inline, scripts only by hash
    assert "t&lt;script&gt;x&lt;/script&gt;" in page and INF_NOTE in page


def test_a_table_of_many_rows_is_data_that_cannot_close_its_element(tmp_path):
    payload = "</script><script>window.__xss = 3</script>"
    table = pd.DataFrame(
        {"task": [payload if i == 7 else f"t{i}" for i in range(150)], "value": np.arange(150.0)}
    )
    table.to_csv(tmp_path / "many.csv", index=False)
    record = {"name": "part", "title": "Part", "status": "done", "verdict": "v",
              "tables": ["many.csv"]}  # fmt: skip
    page = render_report("title", [record], tmp_path, {})
    assert re.findall(r"<script>(.*?)</script>", page, flags=re.S) == [SCRIPT]
    (data,) = re.findall(r"<script type='application/json'>(.*?)</script>", page, flags=re.S)
    rows = json.loads(data)["rows"]
    assert len(rows) == 150 and rows[7][0] == payload and rows[149][1] == "149"


def test_section_sizes_add_up_to_the_page(tmp_path):
    from miragelab.report.html import section_sizes

    records = [
        {"name": name, "title": name.title(), "status": "done", "verdict": "é" * k}
        for k, name in enumerate(("first", "second"), start=1)
    ]
    page = render_report("title", records, tmp_path, {"python": "3.11"})
    sizes = section_sizes(page)
    assert list(sizes) == ["head", "first", "second"]
    assert sum(sizes.values()) == len(page.encode("utf-8"))

"""One HTML page: its figures embedded, no external request, all text escaped.

The one exception to embedding: a verdict's figure (one per verdict that is not
``smooth``, hundreds in a meta-analysis) opens from its row of the verdict
table and is read then from the run's folder (``verdicts/`` beside the table),
so the page does not carry hundreds of figures few readers open.

Anything that came from a model or a data file (task names, predictions, table
cells) goes through :func:`html.escape`, so a model output such as ``<script>``
is shown as text and never runs. A link to an output file (each figure's SVG,
each table) is URL-quoted, then escaped (:func:`_href`), so a name with a
space, ``#``, ``%`` or ``?`` still points at its file.

Tables are for reading, the files beside the page for everything else: a table
shows the columns a reader needs (:func:`reader_columns`; every column stays
in the linked CSV/parquet), numbers to 3 significant digits, long text folded
into a cell that opens on a click, ``inf`` as ``∞`` with what it means; a few
lines of script in the page (:data:`SCRIPT`, allowed by its hash in the
Content-Security-Policy and by nothing else) sort a table by a click on a
column and filter its rows; a table of more rows than a page holds keeps them
as data and draws the ones that match. The layout fits any width from a phone's
390 px: cells wrap anywhere, the less needed columns hide on narrow screens. A
print stylesheet makes "print to PDF" a clean A4 document (:func:`write_pdf`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miragelab.atomic import atomic_path, write_text_atomic
from miragelab.errors import InputError
from miragelab.parquet_io import read_parquet

__all__ = [
    "SCRIPT",
    "SCRIPT_SOURCE",
    "find_chromium",
    "reader_columns",
    "render_report",
    "section_sizes",
    "write_pdf",
    "write_report",
]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2rem auto;padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0;max-width:100%}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f4f4f6}.tbl th{cursor:pointer}.tbl th[aria-sort=ascending]::after{content:" \\25B2"}
.tbl th[aria-sort=descending]::after{content:" \\25BC"}
th,td.s{overflow-wrap:normal}td.num{text-align:right;white-space:nowrap}
summary{cursor:pointer}details[open] summary{color:#666}
input[type=search]{font:inherit;padding:.2rem .4rem;max-width:100%;box-sizing:border-box}
img{max-width:100%;height:auto;border:1px solid #eee}figure{margin:1rem 0}
.verdict{font-weight:600;padding:.4rem .6rem;background:#f4f8ff;border-left:4px solid #3b6fd8}
.missing{color:#8a5a00;background:#fff7e6;border-left-color:#e0a100}
.small{color:#666;font-size:.85rem}
details.evidence[open]{width:min(420px,40vw)}details.evidence img{display:block;margin:.3rem 0}
@media (max-width:700px){body{margin:1rem auto}.opt{display:none}
.tbl table{table-layout:fixed;width:100%}
th,td,td.s,td.num{overflow-wrap:anywhere;white-space:normal}details.evidence[open]{width:auto}
.tbl summary{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}}
@media print{body{max-width:none;margin:0;font-size:10pt;color:#000}
.tbl label{display:none}.tbl th{cursor:auto}a{color:inherit;text-decoration:none}
details::details-content{content-visibility:visible;display:contents}summary{display:none}
h2{break-after:avoid}tr,figure,img{break-inside:avoid}.opt{display:table-cell}
@page{size:A4;margin:16mm 14mm}}
"""

#: the page's one script: sort a table by a click on a column, filter its rows by text
SCRIPT = """
function order(x, y) {
  var nx = parseFloat(x), ny = parseFloat(y);
  if (x === "\\u221e") nx = Infinity; if (y === "\\u221e") ny = Infinity;
  return !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
}
function sortable(heads, sort) {
  heads.forEach(function (th, i) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      sort(i, up);
    });
  });
}
document.querySelectorAll("div.tbl").forEach(function (box) {
  var table = box.querySelector("table"), body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var input = box.querySelector("input");
  var data = box.querySelector("script[type='application/json']");
  if (data === null) {  // every row is in the page
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(body.rows, function (row) {
        row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
    sortable(heads, function (i, up) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var c = order(a.cells[i].dataset.v, b.cells[i].dataset.v);
        return up ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
    return;
  }
  // many rows: kept as data, the matching ones drawn (text only, never markup)
  var all = JSON.parse(data.textContent), rows = all.rows.slice();
  var count = box.querySelector(".count");
  function draw() {
    var q = input.value.toLowerCase(), matched = 0, drawn = 0;
    body.textContent = "";
    rows.forEach(function (row) {
      if (q !== "" && row.join(" ").toLowerCase().indexOf(q) < 0) return;
      matched += 1;
      if (drawn >= all.limit) return;
      drawn += 1;
      var tr = document.createElement("tr");
      row.forEach(function (value, i) {
        var td = document.createElement("td");
        td.textContent = value;
        td.dataset.v = value;
        if (all.opt[i]) td.className = "opt";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    count.textContent = matched + " of " + all.rows.length + " rows match" +
      (matched > drawn ? "; the first " + drawn + " are shown" : "");
  }
  input.addEventListener("input", draw);
  sortable(heads, function (i, up) {
    rows.sort(function (a, b) { var c = order(a[i], b[i]); return up ? c : -c; });
    draw();
  });
  draw();
});
"""
#: the Content-Security-Policy source that allows :data:`SCRIPT` and no other script
SCRIPT_SOURCE = (
    "'sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode() + "'"
)

MAX_TABLE_ROWS = 100
#: rows drawn at a time of a table whose rows are kept as data (the others by filter)
DRAWN_ROWS = 200
#: a verdict table shows every verdict that opens its figure, up to this many rows
MAX_VERDICT_ROWS = 500
#: the most columns a table shows (the rest are in its file)
MAX_COLUMNS = 9
#: text longer than this is folded into a cell that opens on a click
FOLD_CHARS = 60
#: what an infinite emergence score means, said under a table that shows one
INF_NOTE = (
    "∞: no variation between neighbouring sizes outside the jump, so the score "
    "(a jump over that variation) is unbounded"
)
#: the columns that say what a row is (up to four are shown), its verdict (always shown),
#: and a long ``reason`` (last)
_IDENTITY = (
    "task", "family", "model", "metric", "harsh_metric", "soft_metric", "model_a",
    "model_b", "axis", "part",
)  # fmt: skip
_VERDICT = ("verdict", "label")
#: the numbers a reader looks for first, in this order
_NUMBERS = (
    "emergence_score", "score_ci_low", "score_ci_high", "p_value", "value", "ci_low",
    "ci_high", "diff", "n", "params",
)  # fmt: skip
_LAST = ("reason",)


def _href(relative: str) -> str:
    """The value of an ``href`` to the file ``relative`` (to the page, ``/``-separated):
    each character that is not safe in a URL path percent-encoded, then HTML-escaped."""
    return html.escape(urllib.parse.quote(relative), quote=True)


def _link(relative: str) -> str:
    """A link to an output file, showing its file name."""
    name = html.escape(relative.rsplit("/", 1)[-1])
    return f'<a href="{_href(relative)}">{name}</a>'


def _img(out_dir: Path, stem: str) -> str:
    """The figure ``stem.png`` embedded, with a link to ``stem.svg`` where there is one."""
    path = out_dir / f"{stem}.png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(path.stem.replace("_", " "))
    svg = f"{stem}.svg"
    caption = ""
    if (out_dir / svg).exists():
        caption = f'<figcaption class="small">{_link(svg)}</figcaption>'
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{caption}</figure>'


def reader_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a reader needs, at most :data:`MAX_COLUMNS`, in the frame's order with
    a ``reason`` last: what the row is (up to five of task, family, model, metric,
    ...), its verdict or label, the measured numbers a reader looks for first (an
    emergence score and its interval, a p-value, a value), then the others. Empty
    columns are left out."""
    names = [str(c) for c in frame.columns if frame[c].notna().any()]

    def ranked(order: tuple[str, ...]) -> list[str]:
        return [c for c in order if c in names]

    must = ranked(_VERDICT)
    identity = ranked(_IDENTITY)[:5]
    last = ranked(_LAST)
    taken = set(must + identity + last)
    rest = ranked(_NUMBERS) + [c for c in names if c not in taken and c not in _NUMBERS]
    budget = max(MAX_COLUMNS - len(taken), 0)
    chosen = taken.difference(last) | set(rest[:budget])
    return [c for c in names if c in chosen] + last


def _text(value: Any) -> tuple[str, str, str]:
    """(plain text, sort key, CSS class) of one table cell: numbers to 3 significant
    digits, an infinity as ``∞``, nothing for a missing value."""
    try:
        missing = value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # a list cell: not missing
        missing = False
    if missing:
        return "", "", ""
    if isinstance(value, bool):
        return str(value).lower(), str(value).lower(), ""
    if isinstance(value, int | float):
        number = float(value)
        if math.isinf(number):
            sign = "-" if number < 0 else ""
            return f"{sign}∞", f"{sign}1e308", "num"
        shown = str(int(number)) if number.is_integer() and abs(number) < 1e6 else f"{number:.3g}"
        return shown, repr(number), "num"
    text = str(value)
    return text, text, "s" if len(text) <= 24 else ""


def _cell(value: Any) -> tuple[str, str, str]:
    """(shown HTML, sort key, CSS class) of one table cell: :func:`_text`, escaped, an
    infinity explained on hover, long text folded into a cell that opens on a click."""
    text, key, css = _text(value)
    if css == "num" and text.endswith("∞"):
        return f"<abbr title='{html.escape(INF_NOTE)}'>{text}</abbr>", key, css
    if len(text) > FOLD_CHARS:
        preview = html.escape(text[: FOLD_CHARS - 10].rstrip()) + "…"
        return f"<details><summary>{preview}</summary>{html.escape(text)}</details>", key, css
    return html.escape(text), key, css


def _heads(columns: list[str]) -> tuple[str, list[bool]]:
    """The header row of a table's columns, and which columns hide on phones (all but
    what the row is, two columns, its verdict and its reason, when there are more than 4)."""
    keep = set([c for c in columns if c in _IDENTITY][:2] + [c for c in columns if c in _VERDICT])
    narrow = [c not in keep and c not in _LAST and len(columns) > 4 for c in columns]
    heads = "".join(
        f"<th{' class=opt' if n else ''} title='sort'>{html.escape(c).replace('_', '_<wbr>')}</th>"
        for c, n in zip(columns, narrow, strict=True)
    )
    return heads, narrow


#: the box above a table that filters its rows
_FILTER = "<label class='small'>filter <input type='search' aria-label='filter rows'></label>"


def _evidence(out_dir: Path, relative: str, frame: pd.DataFrame) -> list[str | None]:
    """Per row of a verdict table, the link (relative to the page) of the figure its
    verdict rests on, where one was drawn (``verdicts/`` beside the table: one per
    verdict that is not ``smooth``), else None."""
    folder = (out_dir / relative).parent / "verdicts"
    needed = {"task", "family", "axis", "harsh_metric", "verdict"}
    if not folder.is_dir() or not needed <= set(frame.columns):
        return [None] * len(frame)
    from miragelab.report.verdict_figures import figure_name

    base = relative.rsplit("/", 1)[0] + "/verdicts/" if "/" in relative else "verdicts/"
    links: list[str | None] = []
    for row in frame.itertuples(index=False):
        name = f"{figure_name(row)}.png"
        links.append(base + name if (folder / name).is_file() else None)
    return links


def _verdict_cell(verdict: str, link: str, reason: object) -> str:
    """A verdict that opens on a click: the figure of its curves and its reason in words."""
    words = "" if reason is None or pd.isna(reason) else f"<p>{html.escape(str(reason))}</p>"
    alt = html.escape(f"evidence of the verdict {verdict}", quote=True)
    return (
        f"<details class='evidence'><summary>{html.escape(verdict)}</summary>"
        f"<img loading='lazy' alt='{alt}' src='{_href(link)}'>{words}</details>"
    )


def _interactive_table(
    frame: pd.DataFrame, caption: str, evidence: list[str | None] | None = None
) -> str:
    """A sortable, filterable table of ``frame``'s reader columns; a verdict with
    ``evidence`` (a figure's link per row) opens its figure and reason on a click."""
    columns = reader_columns(frame)
    heads, narrow = _heads(columns)
    rows, infinite = [], False
    evidence = evidence or [None] * len(frame)
    reasons = frame["reason"].tolist() if "reason" in frame.columns else [None] * len(frame)
    records = frame[columns].itertuples(index=False, name=None)
    for record, link, reason in zip(records, evidence, reasons, strict=True):
        cells = []
        for name, value, hide in zip(columns, record, narrow, strict=True):
            shown, key, css = _cell(value.item() if hasattr(value, "item") else value)
            if name == "verdict" and link is not None:
                shown = _verdict_cell(str(value), link, reason)
            infinite = infinite or (css == "num" and key.endswith("1e308"))
            classes = " ".join(c for c in (css, "opt" if hide else "") if c)
            attr = f" class='{classes}'" if classes else ""
            cells.append(f"<td{attr} data-v='{html.escape(key, quote=True)}'>{shown}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = f"<p class='small'>{html.escape(INF_NOTE)}</p>" if infinite else ""
    return (
        f"<div class='tbl'>{caption}{_FILTER}<table><thead><tr>{heads}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{note}</div>"
    )


def _data_table(frame: pd.DataFrame, caption: str) -> str:
    """A table of many rows: every row of ``frame``'s reader columns kept as data in the
    page (JSON with every ``<`` escaped), the rows that match the filter drawn by :data:`SCRIPT`
    as text, :data:`DRAWN_ROWS` at most at a time."""
    columns = reader_columns(frame)
    heads, narrow = _heads(columns)
    rows = [
        [_text(v.item() if hasattr(v, "item") else v)[0] for v in record]
        for record in frame[columns].itertuples(index=False, name=None)
    ]
    data = json.dumps({"limit": DRAWN_ROWS, "opt": narrow, "rows": rows}, ensure_ascii=False)
    data = data.replace("<", "\\u003c")  # no markup at all: the data cannot end its element
    infinite = any("∞" in v for row in rows for v in row)
    note = f"<p class='small'>{html.escape(INF_NOTE)}</p>" if infinite else ""
    return (
        f"<div class='tbl'>{caption}{_FILTER}<p class='small count'></p><table><thead><tr>{heads}"
        f"</tr></thead><tbody></tbody></table>{note}"
        f"<script type='application/json'>{data}</script></div>"
    )


def _table(out_dir: Path, relative: str) -> tuple[str, set[str]]:
    """A table of the page, and the figures (links) its verdicts open."""
    path = out_dir / relative
    if path.suffix == ".parquet":
        frame = read_parquet(path).to_pandas()
    else:
        frame = pd.read_csv(path)
    rows = MAX_TABLE_ROWS
    if "verdict" not in frame.columns and len(frame) > MAX_TABLE_ROWS:  # every row browsable
        hidden = len(frame.columns) - len(reader_columns(frame))
        extra = f" · {hidden} more columns in the file" if hidden > 0 else ""
        caption = f"<p class='small'>{_link(relative)} · {len(frame):,} rows{extra}</p>"
        return _data_table(frame, caption), set()
    if "verdict" in frame.columns:  # the verdicts a reader came for first, in table order
        smooth = (frame["verdict"] == "smooth").to_numpy()
        frame = frame.iloc[np.argsort(smooth, kind="stable")]
        rows = min(max(rows, int((~smooth).sum())), MAX_VERDICT_ROWS)  # every one that opens
    shown = frame.head(rows)
    hidden = len(frame.columns) - len(reader_columns(frame))
    parts = [_link(relative), f"{len(frame):,} rows"]
    if len(shown) < len(frame):
        parts.append(f"the first {len(shown)} shown")
    if hidden > 0:
        parts.append(f"{hidden} more columns in the file")
    evidence = _evidence(out_dir, relative, shown)
    if any(evidence):
        parts.append("a verdict that is not smooth opens its curves on a click")
    caption = f"<p class='small'>{' · '.join(parts)}</p>"
    return _interactive_table(shown, caption, evidence), {e for e in evidence if e}


def _key_values(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{_cell(str(v))[0]}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def render_report(
    title: str, records: Iterable[dict[str, Any]], out_dir: Path, provenance: Mapping[str, Any]
) -> str:
    """The page as a string; ``records`` are stage summaries with files relative to out_dir."""
    records = list(records)
    overview = "".join(
        f"<tr><td><a href='#{html.escape(r['name'], quote=True)}'>{html.escape(r['title'])}</a>"
        f"</td><td>{html.escape(r['status'])}</td><td>{_cell(r['verdict'])[0]}</td></tr>"
        for r in records
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        f"img-src data: 'self' file:; style-src 'unsafe-inline'; script-src {SCRIPT_SOURCE}\">",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p class='small'>Schaeffer, Miranda &amp; Koyejo, <i>Are Emergent Abilities of Large "
        "Language Models a Mirage?</i> (NeurIPS 2023), reproduced with miragelab.</p>",
        "<h2>Summary</h2><table><tr><th>part</th><th>status</th><th>verdict</th></tr>",
        overview,
        "</table>",
    ]
    for record in records:
        missing = record["status"] == "missing"
        css = "verdict missing" if missing else "verdict"
        parts.append(f"<h2 id='{html.escape(record['name'])}'>{html.escape(record['title'])}</h2>")
        parts.append(f"<p class='{css}'>{html.escape(record['verdict'])}</p>")
        if record.get("headline"):
            parts.append(_key_values(record["headline"]))
        for note in record.get("notes", []):
            parts.append(f"<p>{html.escape(note)}</p>")
        tables, opened = [], set()
        for table in record.get("tables", []):
            shown, links = _table(out_dir, table)
            tables.append(shown)
            opened |= links
        for fig in record.get("figures", []):
            # a verdict's figure opens from its row of the verdict table, not inline
            if (out_dir / f"{fig}.png").exists() and f"{fig}.png" not in opened:
                parts.append(_img(out_dir, fig))
        parts.extend(tables)
    parts.append("<h2>Provenance</h2>")
    parts.append(_key_values(provenance))
    parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


#: what one section of the page may weigh (bytes); a heavier one is named in the summary
SECTION_BUDGET = 2_500_000


def section_sizes(page: str) -> dict[str, int]:
    """Bytes (UTF-8) of each part of the page: ``head`` (up to the first section), each
    section by its id, in page order."""
    sizes: dict[str, int] = {}
    for part in re.split(r"(?=<h2 id=')", page):
        found = re.match(r"<h2 id='([^']*)'", part)
        name = html.unescape(found.group(1)) if found else "head"
        sizes[name] = sizes.get(name, 0) + len(part.encode("utf-8"))
    return sizes


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable on this machine, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(page: str | os.PathLike[str], pdf: str | os.PathLike[str]) -> Path:
    """Print the page to PDF with headless Chromium (the page's print stylesheet: A4,
    folded text unfolded, filters hidden), atomically.

    Raises :class:`~miragelab.errors.InputError` when no Chromium is installed or it
    fails; nothing is written then.
    """
    browser = find_chromium()
    if browser is None:
        raise InputError(
            "--pdf needs Chromium (apt-get install chromium); none was found", field="pdf"
        )
    target = Path(pdf)
    with atomic_path(target) as tmp, tempfile.TemporaryDirectory() as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
            f"--user-data-dir={profile}", f"--print-to-pdf={tmp}",
            Path(page).resolve().as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InputError(f"Chromium could not print the page: {exc}", field="pdf") from None
        if done.returncode != 0 or not Path(tmp).is_file() or Path(tmp).stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"Chromium could not print the page: {last}", field="pdf")
    return target


def write_report(
    title: str,
    records: Iterable[dict[str, Any]],
    out_dir: str | os.PathLike[str],
    provenance: Mapping[str, Any],
) -> Path:
    out = Path(out_dir)
    path = out / "report.html"
    write_text_atomic(path, render_report(title, records, out, provenance))
    return path

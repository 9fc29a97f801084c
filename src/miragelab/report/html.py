"""One self-contained HTML page: every figure embedded, no external request, all text escaped.

Anything that came from a model or a data file (task names, predictions, table
cells) goes through :func:`html.escape` or pandas' escaping ``to_html``, so a
model output such as ``<script>`` is shown as text and never runs. A link to an
output file (each figure's SVG, each table) is URL-quoted, then escaped
(:func:`_href`), so a name with a space, ``#``, ``%`` or ``?`` still points at its file.
"""

from __future__ import annotations

import base64
import html
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.atomic import write_text_atomic
from miragelab.parquet_io import read_parquet

__all__ = ["render_report", "write_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2rem auto;padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
th{background:#f4f4f6}img{max-width:100%;height:auto;border:1px solid #eee}
.verdict{font-weight:600;padding:.4rem .6rem;background:#f4f8ff;border-left:4px solid #3b6fd8}
.missing{color:#8a5a00;background:#fff7e6;border-left-color:#e0a100}
.small{color:#666;font-size:.85rem}
"""

MAX_TABLE_ROWS = 40


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


def _table(out_dir: Path, relative: str) -> str:
    path = out_dir / relative
    if path.suffix == ".parquet":
        frame = read_parquet(path).to_pandas()
    else:
        frame = pd.read_csv(path)
    shown = frame.head(MAX_TABLE_ROWS)
    more = len(frame) - len(shown)
    note = f'<p class="small">{more} more rows in {_link(relative)}</p>' if more else ""
    body = shown.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", border=0)
    return f'<p class="small">{_link(relative)}</p>{body}{note}'


def _key_values(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def render_report(
    title: str, records: Iterable[dict[str, Any]], out_dir: Path, provenance: Mapping[str, Any]
) -> str:
    """The page as a string; ``records`` are stage summaries with files relative to out_dir."""
    records = list(records)
    overview = "".join(
        f"<tr><td>{html.escape(r['title'])}</td><td>{html.escape(r['status'])}</td>"
        f"<td>{html.escape(r['verdict'])}</td></tr>"
        for r in records
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">",
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
        for fig in record.get("figures", []):
            if (out_dir / f"{fig}.png").exists():
                parts.append(_img(out_dir, fig))
        for table in record.get("tables", []):
            parts.append(_table(out_dir, table))
    parts.append("<h2>Provenance</h2>")
    parts.append(_key_values(provenance))
    parts.append("</body></html>")
    return "\n".join(parts)


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

"""Names from the data are drawn as plain text, and give short, unique file names.

A task or model may be called ``t$\\undefinedmacro$`` (legal data): matplotlib
would parse it as mathtext and fail. Every figure of ``mirage meta``, ``mirage
report`` and ``mirage transitions detect`` must draw it literally; the SVGs are
written with ``svg.fonttype = 'none'`` here, so their text is searchable.
"""

from __future__ import annotations

import html
import io
import json
import re
import urllib.parse
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from miragelab.cli import main
from miragelab.report.figures import SLUG_WIDTH, plain_text, slug
from miragelab.report.html import render_report
from miragelab.tables import write_table

#: bad mathtext; an odd number of ``$``; TeX's special characters; good mathtext
NAMES = [r"t$\undefinedmacro$", "50$ and $x^2$", "a_b^c", "gain $x_1$"]


def _mirage(*args: str) -> int:
    """``mirage ARGS`` in this process, its SVG text kept as text; the exit code."""
    try:
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _svg_text(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    return buf.getvalue()


def _drawn(svg: str) -> list[str]:
    """The plain strings an SVG draws as text (XML-escaped, as SVG writes them); mathtext
    is drawn in ``<tspan>`` pieces and the SVG's comments are left out."""
    return re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)


def _in_svg(name: str, svg: Path) -> bool:
    """``name`` is drawn in ``svg`` within one run of plain text."""
    escaped = html.escape(name, quote=False)
    return any(escaped in text for text in _drawn(svg.read_text(encoding="utf-8")))


@pytest.mark.filterwarnings("ignore:Glyph")  # DejaVu Sans has no CJK glyphs
@pytest.mark.parametrize("name", [*NAMES, r"a\$b", "$", "x\\", "é数学 {}%#~"])
def test_plain_text_is_drawn_exactly_as_given(name: str) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 2], label=plain_text(name))
    ax.set_title(plain_text(name))
    ax.set_xticks([1, 2], [plain_text(name), "b"])
    ax.set_ylabel(r"$L_{CE}$")  # a fixed label meant as math
    ax.legend()
    svg = _svg_text(fig)
    drawn = _drawn(svg)
    assert drawn.count(html.escape(name, quote=False)) == 3  # title, legend, tick label
    assert not any("L_{CE}" in text for text in drawn)  # the math label is typeset,
    assert "<tspan" in svg  # in pieces


def test_an_unescaped_name_is_what_fails() -> None:
    fig = Figure()
    fig.add_subplot().set_title(NAMES[0])
    with pytest.raises(ValueError, match="undefinedmacro"):
        _svg_text(fig)


def test_meta_and_report_draw_the_names_literally(
    noisy_theory_scores: pd.DataFrame, tmp_path: Path
) -> None:
    models = noisy_theory_scores["model"]
    scores = pd.concat(
        [
            noisy_theory_scores.assign(task=name, family=name, model=models + f" of {name}")
            for name in NAMES
        ],
        ignore_index=True,
    )
    path = write_table(scores, tmp_path / "scores.parquet")

    out = tmp_path / "meta"
    assert _mirage("meta", str(path), "--out", str(out), "--n-resamples", "100") == 0
    verdicts = pd.read_csv(out / "meta_verdicts.csv", keep_default_na=False)
    assert sorted(verdicts["task"]) == sorted(NAMES)
    for name in NAMES:
        assert _in_svg(name, out / "top_curves.svg"), name
        assert _in_svg(name, out / "verdict_pairs.svg"), name
    assert len(list((out / "verdicts").glob("*.png"))) == len(NAMES)  # one file per verdict

    out = tmp_path / "report"
    assert _mirage("report", str(path), "--out", str(out), "--n-resamples", "100") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [stage["status"] for stage in summary["stages"]] == ["done"]
    for name in NAMES:
        assert _in_svg(name, out / "meta" / "verdict_pairs.svg"), name
    page = (out / "report.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert "meta/verdict_pairs.svg" in hrefs and "meta/meta_verdicts.csv" in hrefs
    for href in hrefs:
        assert (out / urllib.parse.unquote(html.unescape(href))).is_file(), href


def _step_scores(names: list[str]) -> pd.DataFrame:
    """One training-step curve per name (task, family and model all named so)."""
    rng = np.random.default_rng(0)
    steps = np.unique(np.round(np.geomspace(10, 1e4, 30))).astype(int)
    loss = 3.0 - 0.2 * np.log10(steps) - np.where(steps > 400, 1.0, 0.0)
    rows = [
        {"task": name, "family": name, "model": name, "params": 1e6, "step": int(s),
         "metric": "loss", "value": float(v + 0.03 * rng.standard_normal()),
         "higher_is_better": False}
        for name in names
        for s, v in zip(steps, loss, strict=True)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_transitions_detect_draws_the_names_and_keeps_every_curve(tmp_path: Path) -> None:
    names = [*NAMES, "a/b", "a.b"]  # the last two read the same in a file name
    path = tmp_path / "steps.csv"
    _step_scores(names).to_csv(path, index=False)
    out = tmp_path / "out"
    code = _mirage("transitions", "detect", str(path), "--out", str(out), "--n-boot", "99")
    assert code == 0
    assert len(pd.read_parquet(out / "transitions.parquet")) == len(names)
    svgs = sorted((out / "figures").glob("*.svg"))
    assert len(svgs) == len(list((out / "figures").glob("*.png"))) == len(names)
    for name in names:
        assert sum(_in_svg(f"{name} · {name} · loss", svg) for svg in svgs) == 1, name


def test_slug_is_unique_bounded_and_portable(tmp_path: Path) -> None:
    portable = re.compile(r"[A-Za-z0-9_-]+")
    same_reading = [slug("a/b"), slug("a.b"), slug("a b")]
    assert len(set(same_reading)) == 3
    assert all(s.startswith("a-b-") for s in same_reading)
    long_a, long_b = "x" * 499 + "a", "x" * 499 + "b"
    assert slug(long_a) != slug(long_b)
    assert len(slug(long_a)) <= SLUG_WIDTH + 9  # readable part, "-", 8 hex digits
    assert slug("café").startswith("cafe-")
    assert re.fullmatch(r"[0-9a-f]{8}", slug("数学"))
    assert slug("数学") != slug("数字")
    assert slug("a", "b") != slug("a_b")  # a key's parts are hashed as parts
    assert slug(NAMES[0]) == slug(NAMES[0])  # stable across calls
    names = [*NAMES, long_a, "café", "数学", "../..", "\udc80"]
    for name in names:
        stem = slug(name)
        assert portable.fullmatch(stem), stem
        (tmp_path / f"{stem}.png").write_bytes(b"")
    assert len(list(tmp_path.iterdir())) == len(names)


def test_html_links_to_files_are_url_quoted(tmp_path: Path) -> None:
    name = "a b#c%d?e"
    (tmp_path / f"{name}.csv").write_text("x\n1\n")
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    fig.savefig(tmp_path / f"{name}.png")
    fig.savefig(tmp_path / f"{name}.svg")
    record = {"name": "s", "title": "S", "status": "done", "verdict": "v",
              "figures": [name], "tables": [f"{name}.csv"]}  # fmt: skip
    page = render_report("t", [record], tmp_path, {})
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert sorted(hrefs) == ["a%20b%23c%25d%3Fe.csv", "a%20b%23c%25d%3Fe.svg"]
    assert ">a b#c%d?e.csv</a>" in page  # the name itself is shown as written

"""Every figure the project saves has one house style, checked on the saved figures.

Each test draws the figures of one part (theory, the three predictions, the
meta-analysis and its verdicts, the back-test, the scale forecast, transitions
and induction heads, the vision ladders) through its own writer, records every
figure handed to ``savefig``, and reads back what was drawn: one font; one size
per role of text whatever the module asked for; no top or right spine, no
legend frame; log x on every axis against a scale; harsh metrics in the harsh
colour and continuous ones in the continuous colour. A figure drawn without
the style (``Figure.savefig`` directly) fails the same checks, so they can fail.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from conftest import make_noisy_theory_scores, mirage_code
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from miragelab.report import style
from miragelab.report.figures import save_figure
from miragelab.tables import SAMPLES, validate_frame, write_table

#: x labels of an axis against a scale, which must be log-x
SCALE = re.compile(
    r"param|\bstep|tokens (trained|seen)|training tokens|compute|flop|log scale|\bN\b",
    re.IGNORECASE,
)


@pytest.fixture()
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure saved while the test runs, once each."""
    figures: list[Figure] = []
    original = Figure.savefig

    def record(self: Figure, *args: object, **kwargs: object) -> None:
        if not any(f is self for f in figures):
            figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def _problems(fig: Figure) -> list[str]:
    """What breaks the house style in ``fig`` (empty: none)."""
    found = []
    fonts = {tuple(t.get_fontfamily()) for t in _texts(fig)}
    if fonts != {(style.FONT,)}:
        found.append(f"fonts {fonts}")
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_fontsize() != style.SIZES["suptitle"]:
        found.append(f"figure title at {suptitle.get_fontsize()}")
    for legend in fig.legends:
        sizes = {t.get_fontsize() for t in legend.get_texts()}
        if sizes - {style.SIZES["legend"]} or legend.get_frame_on():
            found.append("figure legend")
    for ax in fig.get_axes():
        if not ax.get_visible() or not ax.axison:
            continue
        found += [f"{ax.get_title()!r}: {p}" for p in _axes_problems(ax)]
    return found


def _axes_problems(ax: Axes) -> list[str]:
    found = []
    for role, texts in (
        ("title", [ax.title]),
        ("label", [ax.xaxis.label, ax.yaxis.label]),
        ("tick", ax.xaxis.get_ticklabels(which="both") + ax.yaxis.get_ticklabels(which="both")),
    ):
        for text in texts:
            if text.get_text() and text.get_fontsize() != style.SIZES[role]:
                found.append(f"{role} {text.get_text()!r} at {text.get_fontsize()}")
    for side in ("top", "right"):
        if ax.spines[side].get_visible():
            found.append(f"{side} spine")
    legend = ax.get_legend()
    if legend is not None:
        if legend.get_frame_on():
            found.append("legend frame")
        if {t.get_fontsize() for t in legend.get_texts()} - {style.SIZES["legend"]}:
            found.append("legend size")
    label = ax.get_xlabel()
    if SCALE.search(label) and "lower is better" not in label and ax.get_xscale() != "log":
        found.append(f"x {label!r} on a {ax.get_xscale()} scale")
    return found


def _assert_styled(figures: list[Figure], at_least: int) -> None:
    assert len(figures) >= at_least
    problems = {i: _problems(fig) for i, fig in enumerate(figures)}
    assert not any(problems.values()), problems


def _same(colour: object, expected: str) -> bool:
    return mcolors.to_hex(colour) == mcolors.to_hex(expected)


def _marker_colours(ax: Axes) -> set[str]:
    """The colours of the data points drawn on ``ax`` (lines with a marker)."""
    return {
        mcolors.to_hex(line.get_color())
        for line in ax.get_lines()
        if isinstance(line, Line2D) and line.get_marker() not in (None, "None", "")
    }


# --------------------------------------------------------------------- the checks themselves


def test_a_figure_drawn_any_which_way_is_given_the_house_style(tmp_path: Path) -> None:
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot([1, 10, 100], [1, 2, 3], "o-", label="a curve")
    ax.set_xscale("log")
    ax.set_title("odd sizes", fontsize=17, fontfamily="serif")
    ax.set_xlabel("parameters", fontsize=3)
    ax.tick_params(labelsize=13)
    ax.legend(fontsize=15, frameon=True)
    fig.suptitle("big", fontsize=30)
    fig.supxlabel("a note under the panels", fontsize=6.5)
    assert _problems(fig)  # drawn without the style: the checks see it
    save_figure(fig, tmp_path / "f")
    assert _problems(fig) == []
    assert fig._supxlabel.get_fontsize() == 6.5  # a note keeps its size
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.svg").exists()


def test_a_linear_axis_against_parameters_is_caught() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([1e3, 1e6], [0, 1])
    ax.set_xlabel("parameters")
    style.finish(fig)
    assert any("linear scale" in p for p in _problems(fig))


def test_colours_by_kind_of_metric() -> None:
    assert style.metric_colour("exact_match") == style.HARSH
    assert style.metric_colour("acc,none") == style.HARSH
    assert style.metric_colour("multiple_choice_grade") == style.HARSH
    assert style.metric_colour("token_edit_distance") == style.CONTINUOUS
    assert style.metric_colour("brier_score") == style.CONTINUOUS
    assert style.metric_colour("ece") == style.INK  # a calibration error: neither
    shades = style.sequence_colours(4, kind="harsh")
    assert len(shades) == 4 and len({mcolors.to_hex(c) for c in shades}) == 4
    # light to dark: the sum of the channels falls along the family
    assert all(sum(a[:3]) > sum(b[:3]) for a, b in zip(shades, shades[1:], strict=False))
    assert _same(style.sequence_colours(1, kind="continuous")[0], style.CONTINUOUS)
    with pytest.raises(ValueError, match="kind"):
        style.sequence_colours(2, kind="bold")


def test_the_colours_are_told_apart_in_grey() -> None:
    """Harsh, continuous and ink differ in lightness (ITU-R BT.601 luma) by a tenth or
    more, so a grey print keeps them apart."""
    luma = [
        float(np.dot(mcolors.to_rgb(c), [0.299, 0.587, 0.114]))
        for c in (style.HARSH, style.CONTINUOUS, style.INK)
    ]
    assert min(abs(a - b) for i, a in enumerate(luma) for b in luma[i + 1 :]) >= 0.1


def test_titles_are_wrapped_to_their_panel() -> None:
    text = "a_rather_long_task_name · another_long_family_name · model-with-a-long-name"
    lines = style.wrap(text, 3.2).split("\n")
    chars = 3.2 * 72 / (0.6 * style.SIZES["title"])
    assert len(lines) >= 2 and all(len(line) <= math.floor(chars) for line in lines)


# ------------------------------------------------------------------------ each part's figures


def test_theory_figure(saved: list[Figure], tmp_path: Path) -> None:
    from miragelab.report import write_theory_outputs

    write_theory_outputs(tmp_path, 2e9, -0.5, [1, 2, 4], points=20)
    _assert_styled(saved, 1)


def _samples(n_ex: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    p_digit = np.array([0.05, 0.4, 0.7, 0.9, 0.99])
    targets = [f"{v:04d}" for v in rng.integers(1000, 10000, n_ex)]
    rows = []
    for k, p in enumerate(p_digit):
        hit = rng.random((n_ex, 4)) < p
        for j, t in enumerate(targets):
            pred = "".join(c if hit[j, i] else str((int(c) + 1) % 10) for i, c in enumerate(t))
            rows.append({"task": "add4", "family": "toy", "model": f"m{k}",
                         "params": float(10 ** (3.5 + k / 2)), "example_id": str(j),
                         "prompt": "x", "target": t, "prediction": pred,
                         "target_token_logprobs": [math.log(p)] * 4})  # fmt: skip
    return validate_frame(pd.DataFrame(rows), SAMPLES)


def test_the_predictions_colour_harsh_and_continuous_metrics(
    saved: list[Figure], tmp_path: Path
) -> None:
    from test_ladder_predictions import _by_length

    from miragelab.ladder.predictions import run_predictions

    run_predictions(_samples(), tmp_path / "one", small_n=50)
    run_predictions(_by_length(n_ex=100)[0], tmp_path / "lengths")
    _assert_styled(saved, 3)
    harsh, soft = mcolors.to_hex(style.HARSH), mcolors.to_hex(style.CONTINUOUS)
    pred1 = next(f for f in saved if "three metrics" in f._suptitle.get_text())
    # exact match, token edit distance, per-token probability
    assert [_marker_colours(ax) for ax in pred1.get_axes()] == [{harsh}, {soft}, {soft}]
    pred3 = next(f for f in saved if "answers of 1 to 5" in f._suptitle.get_text())
    em_ax, ed_ax, score_ax, smooth_ax = pred3.get_axes()
    reds = {mcolors.to_hex(c) for c in style.sequence_colours(5, kind="harsh")}
    blues = {mcolors.to_hex(c) for c in style.sequence_colours(5, kind="continuous")}
    assert _marker_colours(em_ax) == reds and _marker_colours(ed_ax) == blues
    assert _marker_colours(score_ax) == _marker_colours(smooth_ax) == {harsh, soft}


def test_meta_and_verdict_figures(saved: list[Figure], tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    write_table(make_noisy_theory_scores(n=2000), scores)
    assert mirage_code("meta", scores, "--out", tmp_path / "meta") == 0
    _assert_styled(saved, 4)  # by metric, top curves, the grid, one per verdict
    (one,) = [f for f in saved if f._supxlabel is not None]  # the verdict's own figure
    soft_ax, harsh_ax = one.get_axes()
    assert _marker_colours(soft_ax) == {mcolors.to_hex(style.CONTINUOUS)}
    assert _marker_colours(harsh_ax) == {mcolors.to_hex(style.HARSH)}
    assert harsh_ax.get_xscale() == soft_ax.get_xscale() == "log"
    assert harsh_ax.get_xlim() == pytest.approx(soft_ax.get_xlim(), rel=0.3)


def test_backtest_figure(saved: list[Figure], tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    write_table(make_noisy_theory_scores(n=2000), scores)
    code = mirage_code("fit", scores, "--task", "add", "--family", "law", "--harsh",
                       "exact_match", "--soft", "cross_entropy", "--length", "8",
                       "--holdout", "2", "--out", tmp_path / "fit")  # fmt: skip
    assert code == 0
    _assert_styled(saved, 1)
    loss_ax, acc_ax = saved[0].get_axes()
    assert _same(loss_ax.collections[0].get_facecolor()[0], style.CONTINUOUS)
    assert _same(acc_ax.collections[0].get_facecolor()[0], style.HARSH)


def test_transition_and_induction_figures(saved: list[Figure], tmp_path: Path) -> None:
    from miragelab.report.transitions_figures import induction_figure
    from miragelab.transitions.apply import induction_transitions

    rng = np.random.default_rng(0)
    steps = np.unique(np.round(np.geomspace(10, 1e4, 40))).astype(int)
    drop = np.where(steps > 400, 1.0, 0.0)
    loss = 3.0 - 0.2 * np.log10(steps) - drop + 0.03 * rng.standard_normal(steps.size)
    rows = [{"task": "copy", "family": "toy", "model": "toy-1", "params": 1e6, "step": int(s),
             "metric": "loss", "value": float(v), "higher_is_better": False}
            for s, v in zip(steps, loss, strict=True)]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    code = mirage_code("transitions", "detect", tmp_path / "s.csv", "--out", tmp_path / "t",
                       "--n-boot", 99)  # fmt: skip
    assert code == 0
    checkpoints = pd.DataFrame({
        "step": steps,
        "loss_repeated": loss,
        "loss_nonrepeated": 3.0 - 0.2 * np.log10(steps),
        "icl_score": -drop,
        "prefix_matching": 0.1 + 0.8 * drop,
    })  # fmt: skip
    findings = induction_transitions(checkpoints, n_boot=99)
    induction_figure(checkpoints, findings, tmp_path / "induction")
    _assert_styled(saved, 2)
    transition = saved[0].get_axes()[0]
    fits = {line.get_label(): mcolors.to_hex(line.get_color()) for line in transition.get_lines()}
    assert fits["smooth fit"] == mcolors.to_hex(style.CONTINUOUS)
    assert fits["changepoint fit"] == mcolors.to_hex(style.HARSH)


def test_vision_figure(saved: list[Figure], tmp_path: Path) -> None:
    from miragelab.report.vision_figures import write_vision_outputs
    from miragelab.vision.ladder import analyse

    rng = np.random.default_rng(0)
    rows = []
    for w, width in enumerate((4, 8, 16, 32, 64)):
        for seed in (0, 1):
            base = {"task": "digits", "family": "mlp", "model": f"ae-h{width}", "width": width,
                    "params": float(100 * width), "seed": seed}  # fmt: skip
            mse = 0.5 / (1 + w) + 0.01 * rng.random()
            rows.append(base | {"metric": "mse", "value": mse, "higher_is_better": False})
            for c in (0.1, 0.2, 0.3):
                share = float(1 / (1 + math.exp(-(c - mse) * 30)))
                rows.append(base | {"metric": f"reconstruction_c{c}", "value": share,
                                    "higher_is_better": True})  # fmt: skip
    sharp = ["reconstruction_c0.1", "reconstruction_c0.2", "reconstruction_c0.3"]
    write_vision_outputs(analyse("autoencoder", pd.DataFrame(rows), ["mse"], sharp), tmp_path)
    _assert_styled(saved, 1)
    smooth_ax, sharp_ax = saved[0].get_axes()
    assert _marker_colours(smooth_ax) == {mcolors.to_hex(style.CONTINUOUS)}
    reds = {mcolors.to_hex(c) for c in style.sequence_colours(3, kind="harsh")}
    assert _marker_colours(sharp_ax) == reds


def test_forecast_error_figure(saved: list[Figure], tmp_path: Path) -> None:
    from miragelab.report.ladder_figure import plot_forecast_errors

    rows = pd.DataFrame({"task": ["arc", "hellaswag"], "predicted": [0.5, 0.6],
                         "ci_low": [0.45, 0.55], "ci_high": [0.55, 0.65],
                         "observed": [0.52, 0.58], "abs_error": [0.02, 0.02]})  # fmt: skip
    published = pd.DataFrame({"paper": [3.0, 1.0]}, index=["arc", "hellaswag"])
    save_figure(plot_forecast_errors(rows, published), tmp_path / "errors")
    _assert_styled(saved, 1)


def test_scale_forecast_figures_both_routes(saved: list[Figure], tmp_path: Path) -> None:
    """The two-step route (loss against N, accuracy against loss) and the one-step route
    (accuracy against compute, which is log-x like every other scale)."""
    from miragelab.report.ladder_figure import plot_ladder_forecast
    from miragelab.scale_forecast import Settings, Target, forecast_ladder

    sizes = np.geomspace(1e8, 1e10, 6)
    acc = lambda c: 0.25 + 0.7 / (1 + np.exp(-1.2 * (np.log(c) - np.log(1e21))))  # noqa: E731
    rows = []
    for n in sizes:
        for d in (10 * n, 20 * n):
            ce = 1.5 + 400 / n**0.34 + 1200 / d**0.28
            rows += [(f"m{n:g}", n, d, "ppl", np.exp(ce)), (f"m{n:g}", n, d, "acc", acc(6 * n * d))]
    table = pd.DataFrame(rows, columns=["model", "params", "tokens_trained", "metric", "value"])
    table = table.assign(task="quiz", family="toy")
    target = [Target("big", 3e10, 6e11)]
    for soft in ("ppl", None):
        result = forecast_ladder(table, target, harsh="acc", soft=soft, settings=Settings(n_boot=5))
        method = str(result.table["method"].iloc[0])
        save_figure(plot_ladder_forecast(result, "quiz", method), tmp_path / f"f-{soft}")
    _assert_styled(saved, 2)
    (one_step,) = saved[1].get_axes()  # no step 1, no empty panel
    assert "compute" in one_step.get_xlabel() and one_step.get_xscale() == "log"

"""Forecast a larger model's accuracy from a ladder over parameters and tokens.

The method of the OLMo ladder (Bhagia et al. 2024), with intervals and a
back-test:

1. **Step 1**: the continuous metric (task loss such as ``bpb``, or another
   task's loss such as C4 cross-entropy), as a cross-entropy
   (:func:`miragelab.forecast.to_cross_entropy`: bits become nats, a
   probability its negative log), of each run's last checkpoint as

       L(N, D) = E + A / N**alpha + B / D**beta

   fitted by a Huber loss on log residuals (``delta``), from several starts
   (:func:`fit_loss`).
2. **Step 2**: the harsh metric as a sigmoid of the continuous one,

       acc(L) = top + (floor - top) / (1 + exp(-k (L - L0)))

   fitted on every checkpoint of every run, the first ``skip`` share of each
   run dropped and each run smoothed by a moving average of ``smooth``
   evaluations (:func:`fit_accuracy`). ``floor`` is the task's chance level
   where it is given, else fitted.
3. The two are chained: a target's accuracy is ``acc(L(N, D))``.

Beside it, the one-step route fits accuracy directly as a sigmoid of
``log C`` (training compute, :func:`miragelab.scaling.fit_sigmoid`, the fit that
``mirage fit`` sets beside its power law), ``C`` estimated as ``6 N D`` where the
scores have no ``compute_flops`` (a note says so). Where the task's answer has a
known length ``L`` in the loss's tokens (``length``), the paper's route is a
further method: step 1 as above on the task's own loss, step 2 ``acc = exp(-L
CE)`` (:func:`miragelab.scaling.exact_match_of_loss`, ``mirage fit``'s law; ``"auto"`` fits ``L``
on the ladder, :func:`miragelab.forecast.fit_length`). With no continuous metric
(``soft=None``) the one-step route is the only one.

Intervals
---------
Each forecast is the chained fit; its interval (``confidence``, from a
bootstrap of ``n_boot`` draws) holds four sources of error, each also
measured alone:

* step 1: the fit refitted to its own resampled log residuals;
* step 2: the sigmoid refitted to runs resampled with replacement (a run's
  checkpoints are not independent);
* noise: the spread of the target's one observed checkpoint, measured as the
  checkpoint-to-checkpoint scatter of the ladder's accuracy around its moving
  average;
* extrapolation: what refitting cannot see, a curve of the wrong shape. The
  in-ladder back-test (below) measures the method's error when it extrapolates
  from the smaller sizes to the largest; its root mean square over the tasks,
  per unit of ``log N`` extrapolated, times the target's distance in ``log N``
  beyond the ladder, is the standard deviation added (to first order, the bias
  of a curve of the wrong shape grows linearly with the distance extrapolated).

``dominant`` names the largest. ``note`` says when a route gives no number:
accuracy that does not rise along the route's x across the runs (a one-sided
Spearman test at :data:`IDENTIFIED_LEVEL` on one point per run; a ladder at
chance fails it but for the test's false-positive rate), or a fit of the loss
whose exponent in N sits at its bound 0. It also says when a target lies inside
the ladder (an interpolation) and when no run has the checkpoints to measure the
noise.

Choosing the method
-------------------
A rule fixed here, that never sees a target: every method is back-tested
inside the ladder (fit on all sizes but the largest, predict the largest
size's runs) and the one with the lowest mean absolute error over the tasks
that every method could forecast is the ``default``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from miragelab.errors import InputError
from miragelab.forecast import check_length, fit_length, to_cross_entropy
from miragelab.scaling import exact_match_of_loss, fit_sigmoid, training_flops
from miragelab.tables import without_attrs

__all__ = [
    "AccuracyFit",
    "LadderForecast",
    "LossFit",
    "Settings",
    "Target",
    "fit_accuracy",
    "fit_loss",
    "forecast_ladder",
    "largest_models",
    "parse_target",
]

FORECAST_COLUMNS = (
    "task",
    "family",
    "target_name",
    "target_params",
    "target_tokens",
    "target_flops",
    "method",
    "default",
    "predicted",
    "ci_low",
    "ci_high",
    "observed",
    "abs_error",
    "predicted_loss",
    "observed_loss",
    "dominant",
    "step1_sd",
    "step2_sd",
    "noise_sd",
    "extrapolation_sd",
    "note",
)
#: relative tolerance within which a model's (params, tokens) are a target's
SAME_MODEL = 0.01
#: level of the test that a route's accuracy moves with its x (:func:`_not_identified`)
IDENTIFIED_LEVEL = 0.05


@dataclass(frozen=True)
class Target:
    """A model to forecast: its name, parameters, training tokens and compute."""

    name: str
    params: float
    tokens: float
    flops: float | None = None


def parse_target(text: str) -> Target:
    """``NAME:params=N,tokens=D[,flops=C]`` (sizes such as ``6.9b`` and ``4T`` allowed)."""
    from miragelab.sources.sizes import parse_size

    name, sep, rest = str(text).partition(":")
    if not sep or not name.strip():
        raise InputError(f"expected NAME:params=N,tokens=D[,flops=C], got {text!r}", field="target")
    values: dict[str, float] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in ("params", "tokens", "flops") or key in values:
            raise InputError(
                f"expected params=N, tokens=D and optionally flops=C, got {item.strip()!r}",
                field="target",
            )
        try:
            number = parse_size(value.strip())
        except InputError:
            raise InputError(
                f"{key}: not a number, got {value.strip()!r}", field="target"
            ) from None
        if not (math.isfinite(number) and number > 0):
            raise InputError(f"{key} must be > 0, got {value.strip()!r}", field="target")
        values[key] = number
    if "params" not in values or "tokens" not in values:
        raise InputError(f"target {name.strip()!r} needs params= and tokens=", field="target")
    return Target(name.strip(), values["params"], values["tokens"], values.get("flops"))


@dataclass(frozen=True)
class Settings:
    """How the ladder is read and fitted (defaults: the published method's).

    Checked on the OLMo ladder's own back-test (fit on 190M-760M, forecast the 1.3B
    runs; the 7B never read), over ``last`` 1 or 3, ``skip`` 0, 0.1 or 0.3 and
    ``smooth`` 1, 5 or 10: each method's mean error moved by at most 0.26 points
    (C4 route 0.65-0.76, task-loss route 0.95-1.21, compute 1.42-1.58), less than
    the spread between the eight tasks. ``last=3`` was 0.1-0.2 points better for
    every method, within what one back-test of four runs can tell apart, so the
    published values stay.
    """

    #: Huber threshold on log residuals of step 1 (1e-3: close to least absolute deviations)
    delta: float = 1e-3
    #: share of each run's first checkpoints left out of step 2
    skip: float = 0.1
    #: moving average over this many evaluations in step 2
    smooth: int = 5
    #: step 1 anchors on the mean of each run's last ``last`` checkpoints
    last: int = 1
    n_boot: int = 200
    confidence: float = 0.9

    def __post_init__(self) -> None:
        for name in ("delta", "skip", "smooth", "last", "n_boot", "confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise InputError(f"expected a number, got {value!r}", field=name)
            if name in ("smooth", "last", "n_boot") and not float(value).is_integer():
                raise InputError(f"expected a whole number, got {value!r}", field=name)
        checks = {
            "delta": (self.delta > 0, "> 0"),
            "skip": (0 <= self.skip < 1, "in [0, 1)"),
            "smooth": (self.smooth >= 1, ">= 1"),
            "last": (self.last >= 1, ">= 1"),
            "n_boot": (self.n_boot >= 1, ">= 1"),
            "confidence": (0 < self.confidence < 1, "in (0, 1)"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise InputError(f"must be {allowed}, got {getattr(self, name)!r}", field=name)


# --------------------------------------------------------------------------- step 1


@dataclass(frozen=True)
class LossFit:
    """``E + exp(a) / N**alpha + exp(b) / D**beta``.

    Where every run was trained on the same tokens (``tokens`` is that number), ``D``'s
    term is not identified: it is folded into ``E`` (``b = -inf``), and the law holds at
    that ``D`` only (:meth:`covers`).
    """

    E: float
    a: float
    alpha: float
    b: float
    beta: float
    tokens: float | None = None

    def predict(self, params: np.ndarray | float, tokens: np.ndarray | float) -> np.ndarray:
        n, d = np.log(np.asarray(params, float)), np.log(np.asarray(tokens, float))
        return self.E + np.exp(self.a - self.alpha * n) + np.exp(self.b - self.beta * d)

    def covers(self, tokens: float) -> bool:
        """Whether the law speaks of models trained on ``tokens``."""
        return self.tokens is None or abs(tokens / self.tokens - 1) < SAME_MODEL

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.E, self.a, self.alpha, self.b, self.beta])


#: L-BFGS-B stopping rules of step 1: its losses are sums of tiny Huber terms (about 1e-5),
#: where scipy's default gradient tolerance (1e-5) would stop before the minimum
TIGHT = {"ftol": 1e-14, "gtol": 1e-12, "maxiter": 2000}


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def fit_loss(
    params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    *,
    delta: float = 1e-3,
    start: np.ndarray | None = None,
) -> LossFit:
    """Robust fit of ``L(N, D)`` (Huber on ``log L``), the best of several starts.

    ``start`` (a previous fit's :attr:`LossFit.vector`) replaces the grid of starts,
    as a bootstrap refit does. Runs that all share one ``D`` (within
    :data:`SAME_MODEL`) fit ``E + A / N**alpha`` at that ``D``, from three runs.
    """
    n, d = np.log(np.asarray(params, float)), np.log(np.asarray(tokens, float))
    y = np.asarray(loss, float)
    one_d = bool(d.size) and float(np.ptp(d)) < math.log1p(SAME_MODEL)
    need = 3 if one_d else 5
    if y.size < need:
        raise InputError(f"step 1 needs {need} runs or more to fit {need} parameters, got {y.size}")
    if not np.all(y > 0):
        raise InputError("step 1 fits a loss: every value must be > 0", field="soft")
    log_y = np.log(y)
    bounds = [(0.0, float(y.min()) * 0.999), (-20.0, 40.0), (0.0, 2.0), (-20.0, 40.0), (0.0, 2.0)]
    if one_d:
        bounds = bounds[:3]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The Huber loss and its exact gradient (L-BFGS-B needs no finite differences)."""
        term_n = np.exp(theta[1] - theta[2] * n)
        parts = [np.ones_like(n), term_n, -n * term_n]  # d pred / d (E, a, alpha)
        pred = theta[0] + term_n
        if not one_d:
            term_d = np.exp(theta[3] - theta[4] * d)
            pred = pred + term_d
            parts += [term_d, -d * term_d]  # d pred / d (b, beta)
        r = np.log(pred) - log_y
        weight = np.clip(r, -delta, delta) / pred  # d huber / d r, times d r / d pred
        return float(_huber(r, delta).sum()), np.array([float(weight @ p) for p in parts])

    if start is not None:
        start = np.asarray(start, float)[: len(bounds)]
        starts = [np.clip(start, [lo for lo, _ in bounds], [hi for _, hi in bounds])]
    else:
        # a grid of starts: the surface has local minima (E = 0 with shallow exponents
        # among them) that a few starts do not escape
        grid = itertools.product(
            (0.0, 0.5), (0.0, 5.0, 10.0), (0.2, 0.5), (0.0, 5.0, 10.0), (0.2, 0.5)
        )
        starts = [np.array([e * float(y.min()), a, al, b, be]) for e, a, al, b, be in grid]
        if one_d:
            starts = list({tuple(x[:3]): x[:3] for x in starts}.values())
    best = None
    for x0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(
                objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=TIGHT
            )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    if one_d:
        return LossFit(*[float(v) for v in best.x], -math.inf, 0.0, float(np.exp(d.mean())))
    return LossFit(*[float(v) for v in best.x])


# --------------------------------------------------------------------------- step 2


@dataclass(frozen=True)
class AccuracyFit:
    """``top + (floor - top) / (1 + exp(-k (L - L0)))``: accuracy falls from ``top`` to
    ``floor`` as the loss ``L`` grows."""

    floor: float
    top: float
    k: float
    L0: float

    def predict(self, loss: np.ndarray | float) -> np.ndarray:
        z = np.clip(-self.k * (np.asarray(loss, float) - self.L0), -700, 700)
        return self.top + (self.floor - self.top) / (1.0 + np.exp(z))

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.floor, self.top, self.k, self.L0])


def fit_accuracy(
    loss: np.ndarray,
    acc: np.ndarray,
    *,
    chance: float | None = None,
    start: np.ndarray | None = None,
) -> AccuracyFit:
    """Bounded least-squares sigmoid of accuracy in the loss; ``chance`` fixes the floor.

    With the OLMo method, the point (loss 0, accuracy 1) is added: a perfect model
    answers everything, which pins the curve's top where the ladder cannot.
    """
    x = np.append(np.asarray(loss, float), 0.0)
    y = np.append(np.asarray(acc, float), 1.0)
    width = max(float(np.ptp(x)), 1e-6)
    lo = [0.0 if chance is None else chance - 1e-9, 0.0, 0.0, 0.0]
    hi = [1.0 if chance is None else chance + 1e-9, 1.0, 100.0 / width, float(x.max()) * 3]
    if start is not None:
        starts = [np.clip(start, lo, hi)]
    else:
        f0 = float(y.min()) if chance is None else chance
        starts = [
            np.clip([f0, 1.0, k, m], lo, hi)
            for k in (1.0 / width, 5.0 / width)
            for m in (float(np.median(x)), float(x.max()))
        ]

    def model(u: np.ndarray, floor: float, top: float, k: float, l0: float) -> np.ndarray:
        return AccuracyFit(floor, top, k, l0).predict(u)

    best: tuple[float, np.ndarray] | None = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, _ = optimize.curve_fit(model, x, y, p0=p0, bounds=(lo, hi), max_nfev=5000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.square(model(x, *p) - y).sum())
        if best is None or sse < best[0]:
            best = (sse, p)
    if best is None:
        raise InputError("the step-2 sigmoid did not converge", field="harsh")
    return AccuracyFit(*[float(v) for v in best[1]])


@dataclass(frozen=True)
class ExactMatchFit:
    """The paper's step 2: an ``L``-token answer is right with probability
    ``exp(-CE) ** L`` (:func:`miragelab.scaling.exact_match_of_loss`, the law of
    ``mirage fit``)."""

    length: float

    def predict(self, loss: np.ndarray | float) -> np.ndarray:
        return exact_match_of_loss(loss, self.length)


# --------------------------------------------------------------------------- the ladder


@dataclass
class _Task:
    """One task's ladder: each run's anchor (step 1) and smoothed checkpoints (step 2)."""

    anchors: pd.DataFrame  # model, params, tokens, flops, loss, acc
    points: pd.DataFrame  # model, loss, acc (smoothed checkpoints)
    noise: float  # checkpoint-to-checkpoint sd of acc


def _runs(scores: pd.DataFrame, task: str, metric: str) -> pd.DataFrame:
    rows = scores[(scores["task"] == task) & (scores["metric"] == metric)]
    cols = ["model", "params", "tokens_trained", "compute_flops", "step", "value"]
    return rows[cols].sort_values(["model", "tokens_trained", "step"])


def _paired(
    scores: pd.DataFrame, task: str, harsh: str, source: str | None = None, soft: str = ""
) -> pd.DataFrame:
    """Checkpoints of ``task``'s harsh metric with, where ``source`` is given, the
    cross-entropy of ``source``'s ``soft`` metric at the same checkpoint (``loss``;
    :func:`miragelab.forecast.to_cross_entropy`)."""
    acc = _runs(scores, task, harsh).rename(columns={"value": "acc"})
    if source is None:
        return acc.assign(loss=np.nan).reset_index(drop=True)
    loss = _runs(scores, source, soft)[["model", "step", "tokens_trained", "value"]]
    loss["value"] = to_cross_entropy(soft, loss["value"].to_numpy(dtype=float))
    both = acc.merge(loss.rename(columns={"value": "loss"}), on=["model", "step", "tokens_trained"])
    return both.sort_values(["model", "tokens_trained"]).reset_index(drop=True)


def _ladder_task(both: pd.DataFrame, settings: Settings) -> _Task:
    anchors, points, scatter = [], [], []
    for model, run in both.groupby("model", sort=True):
        tail = run.tail(settings.last)
        anchors.append(
            {
                "model": model,
                "params": float(run["params"].iloc[-1]),
                "tokens": float(run["tokens_trained"].iloc[-1]),
                "flops": float(run["compute_flops"].iloc[-1]),
                "loss": float(tail["loss"].mean()),
                "acc": float(tail["acc"].mean()),
            }
        )
        kept = run.iloc[int(math.floor(settings.skip * len(run))) :]
        window = min(settings.smooth, len(kept))
        smooth = kept[["loss", "acc"]].rolling(window, min_periods=1).mean()
        points.append(pd.DataFrame({"model": model, **{c: smooth[c] for c in smooth}}))
        if len(kept) > window:
            scatter.append((kept["acc"] - kept["acc"].rolling(window, center=True).mean()).dropna())
    noise = float(pd.concat(scatter).std(ddof=1)) if scatter else float("nan")
    return _Task(pd.DataFrame(anchors), pd.concat(points, ignore_index=True), noise)


@dataclass(frozen=True)
class _Method:
    """A route from the ladder to a forecast: two steps through an intermediate loss (the
    task's own ``soft`` metric, or that of ``soft_task``), its step 2 a sigmoid or, with a
    ``length``, ``exp(-L CE)``; or one step in compute."""

    name: str
    two_step: bool
    soft_task: str | None = None  # None: the task's own
    soft: str = ""
    length: float | str | None = None  # step 2 is exp(-L CE): L, or "auto" (fitted)

    def step2(
        self, points: pd.DataFrame, chance: float | None, start: object = None
    ) -> AccuracyFit | ExactMatchFit:
        """Step 2 fitted on ``points`` (``start``: a previous fit, as a bootstrap refit)."""
        if self.length is None:
            vector = None if start is None else start.vector  # type: ignore[attr-defined]
            return fit_accuracy(points["loss"], points["acc"], chance=chance, start=vector)
        if self.length == "auto":
            return ExactMatchFit(fit_length(points["loss"], points["acc"]))
        return ExactMatchFit(float(self.length))

    def points(self, scores: pd.DataFrame, task: str, harsh: str) -> pd.DataFrame:
        if not self.two_step:
            return _paired(scores, task, harsh)
        return _paired(scores, task, harsh, self.soft_task or task, self.soft)


def _fit_method(
    task: _Task, method: _Method, chance: float | None, delta: float
) -> tuple[LossFit | None, object]:
    a = task.anchors
    if not method.two_step:
        ok = np.isfinite(a["flops"].to_numpy())
        if ok.sum() < 3:
            raise InputError("the one-step route needs compute_flops (flops_per_token)")
        return None, fit_sigmoid(np.log(a["flops"][ok]), a["acc"][ok])
    step1 = fit_loss(a["params"], a["tokens"], a["loss"], delta=delta)
    return step1, method.step2(task.points, chance)


def _predict(fits: tuple[LossFit | None, object], params, tokens, flops) -> np.ndarray:  # noqa: ANN001
    step1, step2 = fits
    if step1 is None:
        return step2.predict(np.log(np.asarray(flops, float)))  # type: ignore[attr-defined]
    return step2.predict(step1.predict(params, tokens))  # type: ignore[attr-defined]


def _not_identified(task: _Task, method: _Method, harsh: str) -> str | None:
    """Why the ladder cannot place the harsh metric on its x, or None.

    A one-sided Spearman test, at level :data:`IDENTIFIED_LEVEL`, that accuracy rises as
    the intermediate loss falls (or as compute grows), on the runs' anchors: one point
    per run, so the points are independent as the test needs. A ladder at chance
    fails it, save for the test's own false-positive rate.
    """
    a = task.anchors
    x = np.log(a["flops"]) if not method.two_step else -a["loss"]
    ok = np.isfinite(x.to_numpy()) & np.isfinite(a["acc"].to_numpy())
    if ok.sum() < 3:
        return f"fewer than three runs with {harsh} and the route's x"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)  # constant: not identified
        test = stats.spearmanr(x[ok], a["acc"][ok], alternative="greater")
    if test.pvalue < IDENTIFIED_LEVEL:
        return None
    if not np.isfinite(test.pvalue):
        return f"{harsh} or the route's x is the same on every run: the route is not identified"
    along = "compute" if not method.two_step else "a falling loss"
    return (
        f"{harsh} does not rise with {along} across the ladder's runs (Spearman "
        f"rho {test.statistic:.2f}, one-sided p {test.pvalue:.2g}): the route is not identified"
    )


@dataclass
class LadderForecast:
    """The forecasts (:data:`FORECAST_COLUMNS`), the in-ladder back-test, and what each
    figure needs: every task's ladder points and both steps' fits."""

    table: pd.DataFrame
    backtest: pd.DataFrame
    ladders: dict[tuple[str, str], _Task] = field(default_factory=dict)
    fits: dict[tuple[str, str], tuple] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _observations(scores: pd.DataFrame, targets: Sequence[Target]) -> dict[str, list[str]]:
    """The models of ``scores`` whose last checkpoint is a target's (N, D), by target."""
    last = scores.sort_values("tokens_trained").groupby("model").tail(1)
    out: dict[str, list[str]] = {}
    for t in targets:
        same = (np.abs(last["params"] / t.params - 1) < SAME_MODEL) & (
            np.abs(last["tokens_trained"] / t.tokens - 1) < SAME_MODEL
        )
        out[t.name] = sorted(set(last.loc[same, "model"]))
    return out


def forecast_ladder(
    scores: pd.DataFrame,
    targets: Sequence[Target],
    *,
    harsh: str,
    soft: str | None,
    family: str | None = None,
    tasks: Sequence[str] | None = None,
    soft_task: str | None = None,
    length: float | str | None = None,
    chance: Mapping[str, float] | None = None,
    settings: Settings | None = None,
    random_state: int | None = 0,
) -> LadderForecast:
    """Forecast every task's ``harsh`` metric at each target from the ladder in ``scores``.

    Parameters
    ----------
    scores
        A scores table with ``params`` and ``tokens_trained`` on every row: the ladder's
        checkpoints, and any target's own (they are its observations, never fitted).
    targets
        The models to forecast.
    harsh, soft
        The metric forecast, and the continuous metric of step 1 (any metric that
        :func:`miragelab.forecast.to_cross_entropy` turns into a loss; None: no
        continuous metric, the one-step route only).
    family
        The ladder's family, where the scores hold several (a ladder is one family).
    tasks
        Tasks to forecast (default: every task with both metrics).
    soft_task
        Another task whose loss is the intermediate of a further method (C4
        cross-entropy): its ``soft`` metric, else its one continuous metric.
    length
        The answer's length in the loss's tokens, or ``"auto"`` (fitted on the ladder):
        adds the paper's route, ``acc = exp(-L CE)`` of the task's own loss. Only where
        ``harsh`` is the exact match of the answer whose loss ``soft`` is.
    chance
        Chance accuracy by task: the floor of step 2 (else fitted).
    settings
        :class:`Settings`.
    random_state
        Seed of the bootstrap.
    """
    settings = settings or Settings()
    if not targets:
        raise InputError("give at least one target", field="target")
    table = _one_family(without_attrs(scores), family)
    if length is not None and length != "auto":
        length = check_length(length)
    for column in ("params", "tokens_trained"):
        if column not in table.columns or table[column].isna().all():
            raise InputError(
                f"the scores have no {column}: a ladder over parameters and tokens needs both "
                "(mirage ingest runs)",
                field=column,
            )
    table = table[table["tokens_trained"].notna()]
    if "compute_flops" not in table.columns:
        table["compute_flops"] = np.nan
    estimated = table["compute_flops"].isna()
    table.loc[estimated, "compute_flops"] = training_flops(
        table.loc[estimated, "params"], table.loc[estimated, "tokens_trained"]
    )
    if "step" not in table.columns:
        table["step"] = pd.NA
    observed_by = _observations(table, targets)
    held = {m for models in observed_by.values() for m in models}
    ladder = table[~table["model"].isin(held)]
    sizes = np.unique(ladder["params"].to_numpy(dtype=float))
    if sizes.size < 3:
        raise InputError(
            f"the ladder has {sizes.size} size(s) once the targets' own models are set aside; "
            "a forecast over parameters needs three or more",
            field="params",
        )
    harsh_tasks = set(ladder.loc[ladder["metric"] == harsh, "task"])
    soft_tasks = set(ladder.loc[ladder["metric"] == soft, "task"]) if soft else harsh_tasks
    both = f"both {harsh} and {soft}" if soft else harsh
    names = sorted(harsh_tasks & soft_tasks) if tasks is None else list(tasks)
    for name in names:
        if name not in harsh_tasks or (soft_task is None and name not in soft_tasks):
            raise InputError(f"task {name!r} has no {both} scores", field="task")
    if not names:
        raise InputError(f"no task has {both} scores", field="task")
    if length is not None and not soft:
        raise InputError("the p**L route needs the answer's loss: give soft", field="length")
    methods = []
    if soft:
        methods.append(_Method("two_step", True, None, soft))
        if length is not None:
            methods.append(_Method("two_step_p**L", True, None, soft, length))
    if soft_task is not None:
        metric = _soft_metric(ladder, soft_task, soft or "")
        methods.append(_Method(f"two_step[{soft_task}]", True, soft_task, metric))
    methods.append(_Method("one_step_compute", False))
    routes = [
        (name, m)
        for name in names
        for m in methods
        if not m.two_step or m.soft_task is not None or name in soft_tasks
    ]
    chance = _check_chance(chance or {})
    stray = sorted(set(chance) - set(names))
    if stray:  # a typo would otherwise leave that task's floor free
        raise InputError(f"task {stray[0]!r} is not one of the tasks forecast", field="chance")
    result = LadderForecast(pd.DataFrame(), pd.DataFrame())
    result.notes = [f"target {t}: observed as {', '.join(m)}" for t, m in observed_by.items() if m]
    if estimated.any():
        result.notes.append(
            f"{int(estimated.sum())} score rows have no compute_flops: the one-step route "
            "uses 6 N D"
        )
    back = _backtest(ladder, routes, harsh, chance, settings, sizes)
    if back.empty:
        result.notes.append(
            "fewer than four sizes: no back-test inside the ladder, so the method is the "
            "first one and the intervals leave out extrapolation error"
        )
        default, per_distance = methods[0].name, {}
    else:
        # compared on the tasks every method could forecast, so no method wins by omission
        errors = back.pivot(index="task", columns="method", values="abs_error").dropna()
        default = str(errors.mean().idxmin()) if len(errors) else methods[0].name
        # error per unit of log N extrapolated, measured by the back-test
        per_distance = {
            str(k): float(np.sqrt(np.mean(np.square(g["abs_error"]))) / g["distance"].mean())
            for k, g in back.groupby("method")
        }
    rng = np.random.default_rng(random_state)
    rows = []
    for name, method in routes:
        lad = _ladder_task(method.points(ladder, name, harsh), settings)
        result.ladders[(name, method.name)] = lad
        fits, notes = _fit_route(lad, method, harsh, chance.get(name), settings)
        result.fits[(name, method.name)] = fits
        refits = None  # drawn once, at the first target that needs them
        for t in targets:
            row = _forecast_row(table, name, harsh, lad, method, fits, t, observed_by[t.name])
            note = list(notes)
            if t.params <= lad.anchors["params"].max() and t.tokens <= lad.anchors["tokens"].max():
                note.append("the target is inside the ladder (an interpolation)")
            flops = t.flops if t.flops is not None else _target_flops(lad.anchors, t)
            row["target_flops"] = flops
            if fits is not None and fits[0] is not None and not fits[0].covers(t.tokens):
                note.append(
                    f"every run of the ladder saw {fits[0].tokens:.3g} tokens: the loss's "
                    f"dependence on tokens is not identified, so no forecast at {t.tokens:.3g}"
                )
            elif fits is not None:
                distance = max(float(np.log(t.params / lad.anchors["params"].max())), 0.0)
                if distance > 0 and not back.empty and method.name not in per_distance:
                    note.append(
                        "the back-test could not fit this route on the smaller sizes: the "
                        "interval leaves out extrapolation error"
                    )
                extra = per_distance.get(method.name, 0.0) * distance
                if refits is None:
                    refits = _refits(lad, method, chance.get(name), fits, settings, rng)
                row.update(_interval(lad, fits, refits, t, flops, extra, settings, rng))
            row["abs_error"] = abs(row["predicted"] - row["observed"])
            row["note"] = "; ".join(note)
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(FORECAST_COLUMNS))
    frame["family"] = _family_name(table)
    frame["default"] = frame["method"] == default
    result.table = frame
    result.backtest = back
    return result


def _check_chance(chance: Mapping[str, float]) -> dict[str, float]:
    """Chance accuracies by task: numbers in [0, 1)."""
    out = {}
    for task, value in chance.items():
        try:
            p = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{task}: expected a number, got {value!r}", field="chance") from None
        if not 0 <= p < 1:
            raise InputError(f"{task}: chance must be in [0, 1), got {value!r}", field="chance")
        out[str(task)] = p
    return out


def _one_family(table: pd.DataFrame, family: str | None) -> pd.DataFrame:
    """The rows of ``family`` (required where the table holds several: a ladder is one)."""
    names = sorted(set(table["family"].dropna())) if "family" in table.columns else []
    if family is None:
        if len(names) > 1:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise InputError(
                f"the scores hold {len(names)} families ({shown}): name the ladder's family",
                field="family",
            )
        return table
    if family not in names:
        raise InputError(f"no scores of family {family!r}", field="family")
    return table[table["family"] == family].reset_index(drop=True)


def _family_name(table: pd.DataFrame) -> str:
    names = sorted(set(table["family"].dropna())) if "family" in table.columns else []
    return str(names[0]) if len(names) == 1 else ""


def largest_models(
    scores: pd.DataFrame, holdout: int = 1, *, family: str | None = None
) -> list[Target]:
    """The models of the ``holdout`` largest sizes as targets (each at its last
    checkpoint's tokens and compute): a back-test of the ladder that remains."""
    table = _one_family(without_attrs(scores), family)
    if isinstance(holdout, bool) or not isinstance(holdout, (int, np.integer)) or holdout < 1:
        raise InputError(f"must be a whole number >= 1, got {holdout!r}", field="holdout")
    table = table[table["params"].notna() & table["tokens_trained"].notna()]
    sizes = np.unique(table["params"].to_numpy(dtype=float))
    if sizes.size < holdout + 3:
        raise InputError(
            f"{sizes.size} sizes: holding out {holdout} needs {holdout + 3} or more "
            "(three to fit on)",
            field="holdout",
        )
    last = table.sort_values("tokens_trained").groupby("model").tail(1)
    last = last[last["params"] >= sizes[-holdout]].sort_values(["params", "tokens_trained"])
    flops = last["compute_flops"] if "compute_flops" in last.columns else pd.Series(np.nan)
    return [
        Target(str(m), float(n), float(d), float(c) if pd.notna(c) else None)
        for m, n, d, c in zip(
            last["model"],
            last["params"],
            last["tokens_trained"],
            flops.reindex(last.index),
            strict=True,
        )  # fmt: skip
    ]


def _soft_metric(scores: pd.DataFrame, task: str, soft: str) -> str:
    """The intermediate metric of ``--soft-task``: ``soft`` where the task has it, else its
    one continuous metric."""
    from miragelab.metric_facts import is_continuous

    metrics = sorted(set(scores.loc[scores["task"] == task, "metric"]))
    if not metrics:
        raise InputError(f"no scores of task {task!r}", field="soft-task")
    if soft in metrics:
        return soft
    continuous = [m for m in metrics if is_continuous(m)]
    if len(continuous) != 1:
        raise InputError(
            f"task {task!r} has {len(continuous)} continuous metrics "
            f"({', '.join(continuous) or 'none'}) and no {soft}: cannot tell its intermediate",
            field="soft-task",
        )
    return continuous[0]


def _backtest(
    ladder: pd.DataFrame,
    routes: Sequence[tuple[str, _Method]],
    harsh: str,
    chance: Mapping[str, float],
    settings: Settings,
    sizes: np.ndarray,
) -> pd.DataFrame:
    """Each route's error on the ladder's largest size, fitted on the others."""
    columns = ["task", "method", "abs_error", "distance"]
    if sizes.size < 4:
        return pd.DataFrame(columns=columns)
    top = sizes.max()
    train = ladder[ladder["params"] < top]
    test = ladder[ladder["params"] == top]
    distance = float(np.log(top / train["params"].max()))
    rows = []
    for name, method in routes:
        truth = _ladder_task(_paired(test, name, harsh), settings).anchors
        lad = _ladder_task(method.points(train, name, harsh), settings)
        try:
            fits = _fit_method(lad, method, chance.get(name), settings.delta)
        except InputError:
            continue
        pred = _predict(fits, truth["params"], truth["tokens"], truth["flops"])
        error = float(np.mean(np.abs(pred - truth["acc"])))
        rows.append(dict(zip(columns, (name, method.name, error, distance), strict=True)))
    return pd.DataFrame(rows, columns=columns)


def _fit_route(
    lad: _Task, method: _Method, harsh: str, chance: float | None, settings: Settings
) -> tuple[tuple | None, list[str]]:
    """A route's fits on the whole ladder, or None, with what the rows must say."""
    notes = []
    if not np.isfinite(lad.noise):
        notes.append(
            "no run has enough checkpoints to measure the checkpoint noise: the interval "
            "leaves it out"
        )
    why = _not_identified(lad, method, harsh)
    if why is not None:
        return None, [*notes, why]
    try:
        fits = _fit_method(lad, method, chance, settings.delta)
    except InputError as exc:
        return None, [*notes, str(exc)]
    if fits[0] is not None and fits[0].alpha <= 1e-6:  # at its bound 0
        return None, [*notes, "the loss does not fall with parameters on the ladder"]
    return fits, notes


def _forecast_row(
    table: pd.DataFrame,
    name: str,
    harsh: str,
    lad: _Task,
    method: _Method,
    fits: tuple | None,
    t: Target,
    observed_models: Sequence[str],
) -> dict:
    """A row's target, observations and empty forecast (filled by :func:`_interval`)."""
    observed_loss = np.nan
    if method.two_step:
        source = method.soft_task or name
        observed_loss = _observed(table, source, method.soft, observed_models)
        observed_loss = float(to_cross_entropy(method.soft, np.array([observed_loss]))[0])
    step1 = None if fits is None else fits[0]
    return {
        "task": name,
        "target_name": t.name,
        "target_params": t.params,
        "target_tokens": t.tokens,
        "method": method.name,
        "observed": _observed(table, name, harsh, observed_models),
        "observed_loss": observed_loss,
        "predicted_loss": (
            float(step1.predict(t.params, t.tokens))
            if step1 is not None and step1.covers(t.tokens)
            else np.nan
        ),
        "predicted": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "dominant": "",
        "step1_sd": np.nan,
        "step2_sd": np.nan,
        "noise_sd": np.nan,
        "extrapolation_sd": np.nan,
    }


def _target_flops(anchors: pd.DataFrame, t: Target) -> float:
    """A target's training compute where not given: the ladder's median FLOPs per
    parameter-token times the target's N x D."""
    ratio = anchors["flops"] / (anchors["params"] * anchors["tokens"])
    return float(np.nanmedian(ratio.to_numpy())) * t.params * t.tokens


def _observed(table: pd.DataFrame, task: str, metric: str, models: Sequence[str]) -> float:
    """The mean of ``metric`` at the last checkpoint of ``models`` (a target's own), or NaN."""
    if not models:
        return float("nan")
    rows = table[
        (table["task"] == task) & (table["metric"] == metric) & table["model"].isin(models)
    ]
    last = rows.sort_values("tokens_trained").groupby("model").tail(1)
    return float(last["value"].mean()) if len(last) else float("nan")


@dataclass
class _Refits:
    """A route's bootstrap refits, drawn once and evaluated at every target: step 1 on
    its resampled log residuals, step 2 on runs resampled with replacement (None where a
    refit failed: that draw keeps the fit)."""

    step1: list[LossFit]
    step2: list[object | None]


def _refits(
    lad: _Task,
    method: _Method,
    chance: float | None,
    fits: tuple,
    settings: Settings,
    rng: np.random.Generator,
) -> _Refits:
    step1, step2 = fits
    a = lad.anchors
    out = _Refits([], [])
    if step1 is None:
        flops, acc = np.log(a["flops"].to_numpy()), a["acc"].to_numpy()
        for _ in range(settings.n_boot):
            pick = rng.integers(0, len(a), len(a))
            try:
                refit = fit_sigmoid(flops[pick], acc[pick], step2.n_params, start=step2)
            except (RuntimeError, ValueError):
                refit = None
            out.step2.append(refit)
        return out
    fitted = step1.predict(a["params"], a["tokens"])
    resid = np.log(a["loss"].to_numpy()) - np.log(fitted)
    for _ in range(settings.n_boot):
        y = fitted * np.exp(rng.choice(resid, resid.size))
        out.step1.append(
            fit_loss(a["params"], a["tokens"], y, delta=settings.delta, start=step1.vector)
        )
    groups = {m: g for m, g in lad.points.groupby("model")}
    models = a["model"].to_numpy()
    for _ in range(settings.n_boot):
        pick = rng.choice(models, models.size)
        pts = pd.concat([groups[m] for m in pick if m in groups])
        try:
            out.step2.append(method.step2(pts, chance, start=step2))
        except InputError:
            out.step2.append(None)
    return out


def _interval(
    lad: _Task,
    fits: tuple,
    refits: _Refits,
    t: Target,
    flops: float,
    extrapolation: float,
    settings: Settings,
    rng: np.random.Generator,
) -> dict:
    step1, step2 = fits
    point = float(_predict(fits, t.params, t.tokens, flops))
    B = settings.n_boot
    only1, only2 = np.full(B, point), np.full(B, point)
    if step1 is not None:
        loss_t = float(step1.predict(t.params, t.tokens))
        only1 = np.array(
            [float(step2.predict(r.predict(t.params, t.tokens))) for r in refits.step1]
        )
        x = loss_t
    else:
        x = np.log(float(flops))
    for b, refit in enumerate(refits.step2):
        if refit is not None:
            only2[b] = float(refit.predict(x))  # type: ignore[attr-defined]
    noise_sd = lad.noise if np.isfinite(lad.noise) else 0.0  # a row note says so
    noise = rng.normal(0.0, noise_sd, B) + rng.normal(0.0, extrapolation, B)
    total = only1 + only2 - point + noise
    half = (1 - settings.confidence) / 2
    low, high = np.quantile(total, [half, 1 - half])
    sds = {
        "step1_sd": float(only1.std()),
        "step2_sd": float(only2.std()),
        "noise_sd": noise_sd,
        "extrapolation_sd": extrapolation,
    }
    names = {
        "step1_sd": "step 1",
        "step2_sd": "step 2",
        "noise_sd": "noise",
        "extrapolation_sd": "extrapolation",
    }
    return {
        "predicted": point,
        # a percentile interval of a skewed bootstrap may miss the fit itself: it holds it
        "ci_low": float(np.clip(min(low, point), 0, 1)),
        "ci_high": float(np.clip(max(high, point), 0, 1)),
        "dominant": names[max(sds, key=lambda k: sds[k])],
        **sds,
    }

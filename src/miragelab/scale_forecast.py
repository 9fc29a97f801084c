"""Forecast a larger model's accuracy from a ladder over parameters and tokens.

The method of the OLMo ladder (Bhagia et al. 2024), with intervals and a
back-test:

1. **Step 1**: the continuous metric (task loss such as ``bpb``, or another
   task's loss such as C4 cross-entropy) of each run's last checkpoint as

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
``log C`` (training compute, :func:`miragelab.scaling.fit_sigmoid`).

Intervals
---------
Each forecast is the chained fit; its interval (``confidence``, from a
bootstrap of ``n_boot`` draws) holds three sources of error, each also
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

``dominant`` names the largest. Accuracy that never leaves chance on the
ladder, a loss that does not fall with parameters, or a target inside the
ladder is said in ``note``; the first two give no number.

Choosing the method
-------------------
A rule fixed here, that never sees a target: every method is back-tested
inside the ladder (fit on all sizes but the largest, predict the largest
size's runs) and the one with the lowest mean absolute error over the tasks is
the ``default``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from miragelab.errors import InputError
from miragelab.scaling import fit_sigmoid
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
    "parse_target",
]

FORECAST_COLUMNS = (
    "task",
    "target_name",
    "target_params",
    "target_tokens",
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
    """How the ladder is read and fitted (defaults: the published method's)."""

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


# --------------------------------------------------------------------------- step 1


@dataclass(frozen=True)
class LossFit:
    """``E + exp(a) / N**alpha + exp(b) / D**beta``."""

    E: float
    a: float
    alpha: float
    b: float
    beta: float

    def predict(self, params: np.ndarray | float, tokens: np.ndarray | float) -> np.ndarray:
        n, d = np.log(np.asarray(params, float)), np.log(np.asarray(tokens, float))
        return self.E + np.exp(self.a - self.alpha * n) + np.exp(self.b - self.beta * d)

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.E, self.a, self.alpha, self.b, self.beta])


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
    as a bootstrap refit does.
    """
    n, d = np.log(np.asarray(params, float)), np.log(np.asarray(tokens, float))
    y = np.asarray(loss, float)
    if y.size < 5:
        raise InputError(f"step 1 needs 5 runs or more to fit 5 parameters, got {y.size}")
    if not np.all(y > 0):
        raise InputError("step 1 fits a loss: every value must be > 0", field="soft")
    log_y = np.log(y)
    bounds = [(0.0, float(y.min()) * 0.999), (-20.0, 40.0), (0.0, 2.0), (-20.0, 40.0), (0.0, 2.0)]

    def objective(theta: np.ndarray) -> float:
        e, a, alpha, b, beta = theta
        pred = e + np.exp(a - alpha * n) + np.exp(b - beta * d)
        return float(_huber(np.log(pred) - log_y, delta).sum())

    if start is not None:
        starts = [np.clip(start, [lo for lo, _ in bounds], [hi for _, hi in bounds])]
    else:
        # a grid of starts: the surface has local minima (E = 0 with shallow exponents
        # among them) that a few starts do not escape
        grid = itertools.product(
            (0.0, 0.5), (0.0, 5.0, 10.0), (0.2, 0.5), (0.0, 5.0, 10.0), (0.2, 0.5)
        )
        starts = [np.array([e * float(y.min()), a, al, b, be]) for e, a, al, b, be in grid]
    best = None
    for x0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(objective, x0, method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
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


def _paired(scores: pd.DataFrame, task: str, harsh: str, soft_task: str, soft: str) -> pd.DataFrame:
    """Checkpoints with both the harsh metric of ``task`` and the soft one of ``soft_task``."""
    acc = _runs(scores, task, harsh).rename(columns={"value": "acc"})
    loss = _runs(scores, soft_task, soft)[["model", "step", "tokens_trained", "value"]]
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
                "checkpoints": len(run),
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


@dataclass
class _Method:
    name: str
    soft_task: str | None  # None: one step in compute; "": the task's own
    chance: float | None
    soft: str = ""  # the intermediate's metric


def _fit_method(task: _Task, method: _Method, delta: float) -> tuple[LossFit | None, object]:
    a = task.anchors
    if method.soft_task is None:
        ok = np.isfinite(a["flops"].to_numpy())
        if ok.sum() < 3:
            raise InputError("the one-step route needs compute_flops (flops_per_token)")
        return None, fit_sigmoid(np.log(a["flops"][ok]), a["acc"][ok])
    step1 = fit_loss(a["params"], a["tokens"], a["loss"], delta=delta)
    step2 = fit_accuracy(task.points["loss"], task.points["acc"], chance=method.chance)
    return step1, step2


def _predict(fits: tuple[LossFit | None, object], params, tokens, flops) -> np.ndarray:  # noqa: ANN001
    step1, step2 = fits
    if step1 is None:
        return step2.predict(np.log(np.asarray(flops, float)))  # type: ignore[attr-defined]
    return step2.predict(step1.predict(params, tokens))  # type: ignore[attr-defined]


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
    soft: str,
    tasks: Sequence[str] | None = None,
    soft_task: str | None = None,
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
        The metric forecast, and the continuous metric of step 1.
    tasks
        Tasks to forecast (default: every task with both metrics).
    soft_task
        Another task whose ``soft`` metric is the intermediate (C4 cross-entropy); the
        task's own ``soft`` metric is then a further method.
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
    table = without_attrs(scores)
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
    soft_tasks = set(ladder.loc[ladder["metric"] == soft, "task"])
    names = sorted(harsh_tasks & soft_tasks) if tasks is None else list(tasks)
    soft_task_metric = soft if soft_task is None else _soft_metric(ladder, soft_task, soft)
    for name in names:
        if name not in harsh_tasks or (soft_task is None and name not in soft_tasks):
            raise InputError(f"task {name!r} has no {harsh} and {soft} scores", field="task")
    if not names:
        raise InputError(f"no task has both {harsh} and {soft} scores", field="task")
    chance = dict(chance or {})
    methods = _methods(soft_task, soft, soft_task_metric, soft_tasks)
    rng = np.random.default_rng(random_state)
    result = LadderForecast(pd.DataFrame(), pd.DataFrame())
    result.notes = [f"target {t}: observed as {', '.join(m)}" for t, m in observed_by.items() if m]
    back = _backtest(ladder, names, methods, harsh, soft, soft_task, chance, settings, sizes)
    mean_error = back.groupby("method")["abs_error"].mean()
    # error per unit of log-compute extrapolated, measured by the back-test
    per_distance = {
        str(k): float(np.sqrt(np.mean(np.square(g["abs_error"]))) / g["distance"].mean())
        for k, g in back.groupby("method")
    }
    if back.empty:
        result.notes.append(
            "fewer than four sizes: no back-test inside the ladder, so the method is the "
            "first one and the intervals leave out extrapolation error"
        )
    default = str(mean_error.idxmin()) if mean_error.notna().any() else methods[0][0].name
    rows = []
    for name in names:
        for method, applies in methods:
            if not applies(name):
                continue
            lad = _ladder_task(_method_points(ladder, name, harsh, soft, method), settings)
            result.ladders[(name, method.name)] = lad
            rows += _forecast_rows(
                table,
                name,
                harsh,
                lad,
                method,
                chance,
                targets,
                observed_by,
                settings,
                rng,
                result,
                per_distance.get(method.name, 0.0),
            )
    frame = pd.DataFrame(rows, columns=list(FORECAST_COLUMNS))
    frame["default"] = frame["method"] == default
    result.table = frame
    result.backtest = back
    return result


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


def _methods(
    soft_task: str | None, soft: str, soft_task_metric: str, soft_tasks: set
) -> list[tuple[_Method, object]]:
    """Each method and the test of whether it applies to a task."""

    def own(name: str) -> bool:
        return name in soft_tasks

    out: list[tuple[_Method, object]] = [(_Method("two_step", "", None, soft), own)]
    if soft_task is not None:
        out.append(
            (
                _Method(f"two_step[{soft_task}]", soft_task, None, soft_task_metric),
                lambda name: True,
            )
        )
    out.append((_Method("one_step_compute", None, None), lambda name: True))
    return out


def _method_points(
    scores: pd.DataFrame, name: str, harsh: str, soft: str, method: _Method
) -> pd.DataFrame:
    """The checkpoints a method fits: the harsh metric beside its intermediate (the
    one-step route has none: its "loss" column repeats the harsh metric)."""
    if method.soft_task is None:
        return _paired(scores, name, harsh, name, harsh)
    return _paired(scores, name, harsh, method.soft_task or name, method.soft or soft)


def _method_for(method: _Method, name: str, chance: Mapping[str, float]) -> _Method:
    soft_task = name if method.soft_task == "" else method.soft_task
    return _Method(method.name, soft_task, chance.get(name), method.soft)


def _backtest(
    ladder: pd.DataFrame,
    names: Sequence[str],
    methods: list[tuple[_Method, object]],
    harsh: str,
    soft: str,
    soft_task: str | None,
    chance: Mapping[str, float],
    settings: Settings,
    sizes: np.ndarray,
) -> pd.DataFrame:
    """Each method's error on the ladder's largest size, fitted on the others."""
    if sizes.size < 4:
        return pd.DataFrame(columns=["task", "method", "abs_error", "distance"])
    top = sizes.max()
    train = ladder[ladder["params"] < top]
    test = ladder[ladder["params"] == top]
    rows = []
    for name in names:
        truth = _ladder_task(_paired(test, name, harsh, name, harsh), settings).anchors
        for method, applies in methods:
            if not applies(name):
                continue
            m = _method_for(method, name, chance)
            lad = _ladder_task(_method_points(train, name, harsh, soft, method), settings)
            try:
                fits = _fit_method(lad, m, settings.delta)
            except InputError:
                continue
            pred = _predict(fits, truth["params"], truth["tokens"], truth["flops"])
            rows.append(
                {
                    "task": name,
                    "method": method.name,
                    "abs_error": float(np.mean(np.abs(pred - truth["acc"]))),
                    "distance": float(np.log(top / train["params"].max())),
                }
            )
    return pd.DataFrame(rows, columns=["task", "method", "abs_error", "distance"])


def _forecast_rows(
    table: pd.DataFrame,
    name: str,
    harsh: str,
    lad: _Task,
    method: _Method,
    chance: Mapping[str, float],
    targets: Sequence[Target],
    observed_by: Mapping[str, list[str]],
    settings: Settings,
    rng: np.random.Generator,
    result: LadderForecast,
    per_distance: float,
) -> list[dict]:
    m = _method_for(method, name, chance)
    a = lad.anchors
    rows = []
    notes = []
    acc_range = float(lad.points["acc"].max() - lad.points["acc"].min())
    flat = not np.isfinite(lad.noise) or acc_range < 4 * max(lad.noise, 1e-9)
    fits = None
    if not flat:
        try:
            fits = _fit_method(lad, m, settings.delta)
        except InputError as exc:
            notes.append(str(exc))
    if flat:
        notes.append(
            f"{harsh} barely moves on the ladder (range {acc_range:.3g}, checkpoint noise "
            f"{lad.noise:.3g}): step 2 is not identified"
        )
    if fits is not None and fits[0] is not None and fits[0].alpha < 1e-3:
        notes.append("the loss does not fall with parameters on the ladder")
        fits = None
    result.fits[(name, method.name)] = fits
    for t in targets:
        obs_models = observed_by.get(t.name, [])
        observed = _observed(table, name, harsh, obs_models)
        row = {
            "task": name,
            "target_name": t.name,
            "target_params": t.params,
            "target_tokens": t.tokens,
            "method": method.name,
            "observed": observed,
            "observed_loss": np.nan
            if m.soft_task is None
            else _observed(table, m.soft_task, m.soft, obs_models),
            "predicted_loss": np.nan
            if fits is None or fits[0] is None
            else float(fits[0].predict(t.params, t.tokens)),
        }
        note = list(notes)
        if t.params <= a["params"].max() and t.tokens <= a["tokens"].max():
            note.append("the target is inside the ladder (an interpolation)")
        flops = t.flops
        if flops is None:
            per_token = (a["flops"] / a["tokens"]).to_numpy()
            # flops per token of the ladder's largest size, scaled as 6N
            flops = float(np.nanmedian(per_token / a["params"].to_numpy())) * t.params * t.tokens
        if fits is None:
            row.update(predicted=np.nan, ci_low=np.nan, ci_high=np.nan, dominant="")
            row.update(step1_sd=np.nan, step2_sd=np.nan, noise_sd=np.nan, extrapolation_sd=np.nan)
        else:
            distance = max(float(np.log(t.params / a["params"].max())), 0.0)
            extra = per_distance * distance
            row.update(_interval(lad, m, fits, t, flops, extra, settings, rng))
        row["abs_error"] = abs(row["predicted"] - observed) if np.isfinite(observed) else np.nan
        row["note"] = "; ".join(note)
        rows.append(row)
    return rows


def _observed(table: pd.DataFrame, task: str, harsh: str, models: Sequence[str]) -> float:
    if not models:
        return float("nan")
    rows = table[(table["task"] == task) & (table["metric"] == harsh) & table["model"].isin(models)]
    last = rows.sort_values("tokens_trained").groupby("model").tail(1)
    return float(last["value"].mean()) if len(last) else float("nan")


def _interval(
    lad: _Task,
    method: _Method,
    fits: tuple,
    t: Target,
    flops: float,
    extrapolation: float,
    settings: Settings,
    rng: np.random.Generator,
) -> dict:
    step1, step2 = fits
    point = float(_predict(fits, t.params, t.tokens, flops))
    B = settings.n_boot
    a = lad.anchors
    only1, only2 = np.full(B, point), np.full(B, point)
    models = a["model"].to_numpy()
    if step1 is not None:
        fitted = step1.predict(a["params"], a["tokens"])
        resid = np.log(a["loss"].to_numpy()) - np.log(fitted)
        loss_t = float(step1.predict(t.params, t.tokens))
        for b in range(B):
            y = fitted * np.exp(rng.choice(resid, resid.size))
            refit = fit_loss(a["params"], a["tokens"], y, delta=settings.delta, start=step1.vector)
            only1[b] = float(step2.predict(refit.predict(t.params, t.tokens)))
        groups = {m: g for m, g in lad.points.groupby("model")}
        for b in range(B):
            pick = rng.choice(models, models.size)
            pts = pd.concat([groups[m] for m in pick if m in groups])
            try:
                refit2 = fit_accuracy(
                    pts["loss"], pts["acc"], chance=method.chance, start=step2.vector
                )
            except InputError:
                only2[b] = point
                continue
            only2[b] = float(refit2.predict(loss_t))
    else:
        for b in range(B):
            pick = rng.integers(0, len(a), len(a))
            try:
                refit = fit_sigmoid(np.log(a["flops"].to_numpy()[pick]), a["acc"].to_numpy()[pick])
            except (RuntimeError, ValueError):
                only2[b] = point
                continue
            only2[b] = float(refit.predict(np.log(float(flops))))
    noise = rng.normal(0.0, lad.noise, B) + rng.normal(0.0, extrapolation, B)
    total = point + (only1 - point) + (only2 - point) + noise
    half = (1 - settings.confidence) / 2
    low, high = np.quantile(total, [half, 1 - half])
    sds = {
        "step1_sd": float(only1.std()),
        "step2_sd": float(only2.std()),
        "noise_sd": lad.noise,
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

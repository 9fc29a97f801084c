"""``mirage transitions detect``: a planted step in a scores file is reported and drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from miragelab.cli import app


def _scores(path, jump: float) -> None:
    rng = np.random.default_rng(0)
    steps = np.unique(np.round(np.geomspace(10, 1e4, 40))).astype(int)
    loss = 3.0 - 0.2 * np.log10(steps) + np.where(steps > 400, jump, 0.0)
    loss = loss + 0.03 * rng.standard_normal(steps.size)
    rows = [
        {"task": "copy", "family": "toy", "model": "toy-1", "params": 1e6, "step": int(s),
         "metric": "loss", "value": float(v), "higher_is_better": False}
        for s, v in zip(steps, loss, strict=True)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)


def test_detect_writes_table_and_figures(tmp_path):
    _scores(tmp_path / "step.csv", jump=-1.0)
    _scores(tmp_path / "smooth.csv", jump=0.0)
    for name in ("step", "smooth"):
        out = tmp_path / f"out-{name}"
        result = CliRunner().invoke(
            app,
            ["transitions", "detect", str(tmp_path / f"{name}.csv"), "--out", str(out),
             "--n-boot", "199"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        frame = pd.read_parquet(out / "transitions.parquet")
        assert len(frame) == 1 and (out / "transitions.csv").exists()
        assert bool(frame["detected"].iat[0]) is (name == "step")
        assert len(list((out / "figures").glob("*.png"))) == 1
    frame = pd.read_parquet(tmp_path / "out-step" / "transitions.parquet")
    assert frame["span_low"].iat[0] <= 400 <= frame["span_high"].iat[0]


def test_detect_rejects_bad_axis(tmp_path):
    _scores(tmp_path / "s.csv", jump=0.0)
    result = CliRunner().invoke(
        app, ["transitions", "detect", str(tmp_path / "s.csv"), "--axis", "time"]
    )
    assert result.exit_code != 0

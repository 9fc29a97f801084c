"""The vision ladders: exact parameter counts, determinism per seed, scores, CLI (quick)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from miragelab.cli.vision import vision_app  # noqa: E402
from miragelab.errors import InputError  # noqa: E402
from miragelab.meta import meta_analysis  # noqa: E402
from miragelab.tables import read_scores  # noqa: E402
from miragelab.vision.data import ImageData, load_digits_data  # noqa: E402
from miragelab.vision.ladder import (  # noqa: E402
    AUTOENCODER_QUICK,
    CLASSIFIER_QUICK,
    LadderSpec,
    run_autoencoder_ladder,
    run_classifier_ladder,
    summarise,
)
from miragelab.vision.train import autoencoder, mlp_classifier, n_params  # noqa: E402


@pytest.fixture(scope="module")
def small_digits() -> ImageData:
    data = load_digits_data()
    keep = np.arange(0, data.n, 4)  # 450 images keep the tests fast
    return data.subset(keep)


@pytest.mark.parametrize("width", [1, 7, 64])
def test_parameter_counts_are_exact(width):
    # D -> h -> D: weights 2 D h, biases h + D; D -> h -> 10: (D + 1) h + (h + 1) 10
    assert n_params(autoencoder(64, width)) == 2 * 64 * width + width + 64
    assert n_params(mlp_classifier(64, width, 10)) == 65 * width + 10 * (width + 1)


def test_autoencoder_ladder_is_deterministic_per_seed(small_digits):
    spec = replace(AUTOENCODER_QUICK, widths=(1, 3, 8), epochs=3)
    first = run_autoencoder_ladder(small_digits, spec, threads=1)
    again = run_autoencoder_ladder(small_digits, spec, threads=1)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    # each model depends on its own (seed, width) only: a different ladder order agrees
    reordered = run_autoencoder_ladder(small_digits, replace(spec, widths=(8, 3, 1)), threads=1)
    key = ["model", "seed", "metric"]
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True),
        reordered.sort_values(key).reset_index(drop=True),
        check_exact=True,
    )
    # and different seeds give different models
    mse = first[first["metric"] == "mse"]
    assert mse.groupby("model")["value"].nunique().min() == 2


def test_classifier_ladder_is_deterministic_per_seed(small_digits):
    spec = replace(CLASSIFIER_QUICK, widths=(2, 4, 8), epochs=2, n_sequences=500)
    first = run_classifier_ladder(small_digits, spec, threads=1)
    again = run_classifier_ladder(small_digits, spec, threads=1)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert set(first["metric"]) == {
        "per_image_accuracy",
        "subset_accuracy_K1",
        "subset_accuracy_K2",
        "subset_accuracy_K5",
        "subset_accuracy_K20",
    }
    assert first["params"].tolist()[0] == 75 * 2 + 10


def test_summarise_mean_and_t_interval_by_hand():
    runs = pd.DataFrame(
        {
            "task": "t",
            "family": "f",
            "model": "m",
            "params": 100,
            "metric": "per_image_accuracy",
            "higher_is_better": True,
            "seed": [0, 1, 2],
            "value": [0.1, 0.2, 0.3],
        }
    )
    row = summarise(runs).iloc[0]
    # mean 0.2; sd 0.1; stderr 0.1 / sqrt(3) = 0.057735; t_{0.975, 2} = 4.302653
    assert row["value"] == pytest.approx(0.2)
    assert row["stderr"] == pytest.approx(0.1 / np.sqrt(3))
    assert row["ci_high"] == pytest.approx(0.2 + 4.302653 * 0.057735, abs=1e-5)
    assert row["ci_low"] == 0.0  # 0.2 - 0.248 clipped to the range of a share
    assert row["n"] == 3
    one = summarise(runs.iloc[:1]).iloc[0]
    assert one["n"] == 1 and np.isnan(one["ci_low"]) and one["ci_method"] == "none (one seed)"


def test_spec_rejects_short_ladders():
    with pytest.raises(InputError, match="at least 3 widths"):
        LadderSpec(widths=(1, 2))


def test_k_longer_than_test_set(small_digits):
    with pytest.raises(InputError, match="longer than the 135 test images"):
        run_classifier_ladder(small_digits, replace(CLASSIFIER_QUICK, ks=(1, 500)))


@pytest.mark.parametrize(
    ("command", "figure", "smooth", "sharp_prefix"),
    [
        ("autoencoder", "autoencoder", "mse", "reconstruction_c"),
        ("classifier", "classifier", "per_image_accuracy", "subset_accuracy_K"),
    ],
)
def test_quick_command_writes_tables_and_figures(tmp_path, command, figure, smooth, sharp_prefix):
    out = tmp_path / command
    result = CliRunner().invoke(vision_app, [command, "--out", str(out), "--quick"])
    assert result.exit_code == 0, result.output
    for name in ("scores.parquet", "scores.csv", "runs.csv", "emergence.csv", "verdicts.csv"):
        assert (out / name).stat().st_size > 0
    assert (out / f"{figure}.png").stat().st_size > 0 and (out / f"{figure}.svg").exists()
    scores = read_scores(out / "scores.parquet")  # valid scores table
    assert smooth in set(scores["metric"])
    assert (scores["n"] == 2).all()  # two seeds in --quick
    sharp = sorted(m for m in scores["metric"].unique() if m.startswith(sharp_prefix))
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert sorted(verdicts["harsh_metric"]) == sharp
    assert set(verdicts["soft_metric"]) == {smooth}
    assert set(verdicts["verdict"]) <= {"smooth", "mirage", "genuine", "inconclusive"}
    emergence = pd.read_csv(out / "emergence.csv")
    assert set(emergence["metric"]) == set(scores["metric"])
    # the table is an ordinary scores table: the meta-analysis reads it
    assert len(meta_analysis(scores, n_resamples=100, n_boot=99).measures) == len(emergence)


def test_cli_rejects_half_an_mnist_pair(tmp_path):
    result = CliRunner().invoke(
        vision_app, ["autoencoder", "--out", str(tmp_path), "--mnist-images", "x"]
    )
    assert isinstance(result.exception, InputError)
    assert "give both --mnist-images and --mnist-labels" in str(result.exception)


def test_mirage_vision_reports_a_corrupt_file_in_one_line(tmp_path, capsys):
    from miragelab.cli import main

    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big"))  # 2 sizes missing
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(5))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "vision",
                "classifier",
                "--out",
                str(out),
                "--quick",
                "--mnist-images",
                str(images),
                "--mnist-labels",
                str(labels),
            ]
        )
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    # 8 bytes: the header ends where the second of three sizes should start
    assert lines[0].startswith(f"error: {images}, byte offset 8, field 'dimensions': truncated")
    assert not out.exists()

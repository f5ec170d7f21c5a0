"""benchmarks/label_shift.py: thinning, the scores of one model, the table."""

import numpy as np
import pytest

from keras_transfer._backend import keras


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("label_shift")


def _gaussian(labels, rng):
    return (2.0 * labels + rng.normal(size=len(labels)))[:, None].astype("float32")


def _bayes_model():
    """The Bayes posterior of unit Gaussians at 0 and 2 under a balanced prior."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, "softmax")])
    model.layers[-1].set_weights([np.array([[0.0, 2.0]]), np.array([0.0, -2.0])])
    return model


def test_thinning_keeps_geometric_fractions_of_each_class(bench):
    y = np.repeat(np.arange(10), 50)
    x = np.arange(len(y))
    xt, yt = bench._thin(x, y, 10, 10.0, 0)
    counts = sorted(np.bincount(yt, minlength=10))
    assert counts[0] == 5 and counts[-1] == 50
    np.testing.assert_array_equal(y[xt], yt)  # the inputs follow their labels


def test_the_correction_gains_under_pure_label_shift(bench):
    rng = np.random.default_rng(0)
    ys = rng.integers(0, 2, 2000)
    yt = (rng.random(3000) < 0.15).astype(int)  # the target: 85% class 0
    row = bench._score(
        _bayes_model(),
        (_gaussian(ys, rng), ys),
        _gaussian(yt, rng),
        (_gaussian(yt, rng), yt),
        2,
    )
    assert row["bbse_tv"] < 0.03 and row["em_tv"] < 0.03
    assert row["prediction_tv"] > 0.05  # the uncorrected mean prediction is off
    assert row["bbse"] > row["raw"] + 0.02 and row["em"] > row["raw"] + 0.02
    assert row["true_imbalance"] == pytest.approx(85 / 15, rel=0.15)


def test_summary_and_table(bench):
    def row(pair, seed, setting, raw, bbse):
        return {
            "pair": pair,
            "seed": seed,
            "setting": setting,
            "raw": raw,
            "bbse": bbse,
            "em": raw,
            "bbse_tv": 0.1,
            "em_tv": 0.2,
            "prediction_tv": 0.3,
        }

    rows = [
        row("a", 0, "pure", 0.8, 0.9),
        row("a", 1, "pure", 0.6, 0.7),
        row("b", 0, "pure", 0.5, 0.4),
        row("a", 0, "balanced", 0.5, 0.5),
    ]
    summary = bench.summarize(rows)
    assert summary["pure"]["pairs"]["a"]["raw"] == pytest.approx(0.7)
    assert summary["pure"]["mean"]["bbse"] == pytest.approx(0.6)
    assert set(summary) == {"pure", "balanced"}
    payload = {"summary": summary, "command": "cmd", "config": {"seeds": 2}}
    text = bench.table(payload, "file.json")
    assert "| pure | a | 70.0 | 80.0 (+10.0) |" in text
    assert "| pure | mean | 60.0 | 60.0 (+0.0) |" in text
    assert "`file.json` (`cmd`)" in text

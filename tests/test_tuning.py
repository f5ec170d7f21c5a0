"""Tests for keras_transfer.tuning: real (tiny) KerasTuner searches."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.tuning import (
    TransferHyperModel,
    format_summary,
    make_tuner,
    retrain_best,
    search_summary,
)

kt = pytest.importorskip("keras_tuner")


def tiny_backbone():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b")(h)
    return keras.Model(inputs, h, name="tiny")


def tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype("int32")
    return x, y


def test_define_specs_and_errors():
    hm = TransferHyperModel(
        tiny_backbone, 2, learning_rate=1e-3, unfreeze_depth=[0, 2], dropout=(0.1, 0.3)
    )
    hp = kt.HyperParameters()
    values = hm.declare(hp)
    assert values["learning_rate"] == 1e-3
    assert values["unfreeze_depth"] in (0, 2)
    assert 0.1 <= values["dropout"] <= 0.3
    assert values["head_units"] in (32, 64, 128)
    assert hm.depth == 2
    assert isinstance(hp._hps["learning_rate"][0], kt.engine.hyperparameters.Fixed)
    with pytest.raises(ValueError, match="min < max"):
        TransferHyperModel(tiny_backbone, 2, dropout=(0.5, 0.1)).declare(
            kt.HyperParameters()
        )
    with pytest.raises(ValueError, match="method='cdan'"):
        TransferHyperModel(tiny_backbone, 2, method="cdan")
    with pytest.raises(ValueError, match="Received: kind='sobol'"):
        make_tuner("sobol", TransferHyperModel(tiny_backbone, 2))


def test_unfreeze_depth_range_follows_backbone():
    hm = TransferHyperModel(tiny_backbone(), 2)  # a model: cloned per trial
    hp = kt.HyperParameters()
    hm.declare(hp)
    depth_hp = hp._hps["unfreeze_depth"][0]
    assert (depth_hp.min_value, depth_hp.max_value) == (0, 2)
    first, second = hm.new_backbone(), hm.new_backbone()
    assert first is not second
    np.testing.assert_array_equal(first.get_weights()[0], second.get_weights()[0])


def _search(tmp_path, max_trials, **kwargs):
    x, y = tiny_data()
    hm = TransferHyperModel(tiny_backbone, 2, **kwargs)
    tuner = make_tuner(
        "random",
        hm,
        "val_accuracy",
        max_trials=max_trials,
        directory=tmp_path,
        project_name="search",
        seed=1,
    )
    hm.builds = 0  # the tuner builds once to discover the search space
    tuner.search(
        x[:24],
        y[:24],
        validation_data=(x[24:], y[24:]),
        epochs=1,
        batch_size=8,
        verbose=0,
    )
    return tuner, hm


@pytest.mark.large
def test_three_trial_search_resume_and_retrain(tmp_path):
    tuner, hm = _search(tmp_path, 3)
    assert hm.builds == 3
    rows = search_summary(tuner)
    assert len(rows) == 3
    assert rows[0]["score"] >= rows[-1]["score"]
    best = tuner.get_best_hyperparameters(1)[0].values
    assert 1e-4 <= best["learning_rate"] <= 1e-2
    assert 0 <= best["unfreeze_depth"] <= 2
    assert 0.0 <= best["dropout"] <= 0.5
    assert best["head_units"] in (32, 64, 128)
    table = format_summary(rows)
    assert "learning_rate" in table and "score" in table
    assert len(table.splitlines()) == 2 + 3

    # Resuming from the directory skips the 3 finished trials: one new build.
    tuner2, hm2 = _search(tmp_path, 4)
    assert hm2.builds == 1
    assert len(search_summary(tuner2)) == 4

    x, y = tiny_data()
    model, report = retrain_best(
        tuner2, (x[:24], y[:24]), (x[24:], y[24:]), epochs=1, verbose=0, batch_size=8
    )
    assert report is None
    assert model.predict(x[:2], verbose=0).shape == (2, 2)


@pytest.mark.large
def test_dann_search_on_unsupervised_objective(tmp_path):
    adaptation = pytest.importorskip("keras_transfer.adaptation")
    if not hasattr(adaptation, "DEVCallback"):
        pytest.skip("keras_transfer.adaptation has no DEVCallback yet")
    xs, ys = tiny_data(32, seed=0)
    xt, _ = tiny_data(32, seed=1)
    hm = TransferHyperModel(
        tiny_backbone,
        2,
        method="dann",
        unfreeze_depth="all",
        head_units=16,
        dev_data=((xs[24:], ys[24:]), xt),
    )
    tuner = make_tuner(
        "random", hm, "dev_risk", max_trials=2, directory=tmp_path, seed=0
    )
    train = ({"source": xs[:24], "target": xt[:24]}, ys[:24])
    tuner.search(train[0], train[1], epochs=1, batch_size=8, verbose=0)
    rows = search_summary(tuner)
    assert len(rows) == 2
    assert rows[0]["score"] <= rows[1]["score"]  # dev_risk is minimised
    assert all(
        5.0 <= r["gamma"] <= 15.0 and 0.1 <= r["lambda_max"] <= 1.0 for r in rows
    )

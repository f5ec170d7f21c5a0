"""Label-shift estimation (BBSE, EM) and the prior correction layer."""

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.adaptation.label_shift import (
    PriorCorrection,
    estimate_label_shift,
    prior_corrected,
)


def _confused(labels, k, spread, rng):
    """The Bayes posterior (uniform prior) of 1-D inputs drawn from unit Gaussians
    ``spread`` apart, one per class: calibrated on a balanced source, and the same
    ``p(x | y)`` in both domains (pure label shift)."""
    means = spread * np.arange(k)
    x = means[labels] + rng.normal(size=len(labels))
    logits = -0.5 * (x[:, None] - means[None]) ** 2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return probs / probs.sum(1, keepdims=True)


@pytest.mark.parametrize("estimator", ["bbse", "em"])
def test_estimates_an_imbalanced_target_prior(estimator):
    rng = np.random.default_rng(0)
    k = 4
    ys = rng.integers(0, k, 2000)
    truth = np.array([0.55, 0.25, 0.15, 0.05])
    yt = rng.choice(k, 4000, p=truth)
    got = estimate_label_shift(
        _confused(ys, k, 2.0, rng),
        ys,
        _confused(yt, k, 2.0, rng),
        estimator=estimator,
    )
    assert np.abs(np.asarray(got["target_prior"]) - truth).max() < 0.04
    source_prior = np.bincount(ys, minlength=k) / len(ys)
    np.testing.assert_allclose(
        got["weights"], np.asarray(got["target_prior"]) / source_prior
    )
    assert got["imbalance"] > 5
    assert got["estimator"] == estimator


def test_a_balanced_target_gives_weights_near_one():
    rng = np.random.default_rng(1)
    ys = rng.integers(0, 3, 3000)
    yt = rng.integers(0, 3, 3000)
    got = estimate_label_shift(
        _confused(ys, 3, 2.5, rng), ys, _confused(yt, 3, 2.5, rng)
    )
    np.testing.assert_allclose(got["weights"], 1.0, atol=0.1)


def test_shrink_keeps_a_shift_both_estimators_agree_on():
    rng = np.random.default_rng(0)
    k = 4
    ys = rng.integers(0, k, 2000)
    truth = np.array([0.55, 0.25, 0.15, 0.05])
    yt = rng.choice(k, 4000, p=truth)
    ps, pt = _confused(ys, k, 2.0, rng), _confused(yt, k, 2.0, rng)
    raw = estimate_label_shift(ps, ys, pt)
    got = estimate_label_shift(ps, ys, pt, shrink=True)
    assert raw["reliability"] is None
    assert got["reliability"] > 0.8
    assert np.abs(np.asarray(got["target_prior"]) - truth).max() < 0.06
    source_prior = np.asarray(got["source_prior"])
    # the shrunk prior lies on the segment from the source prior to the estimate
    np.testing.assert_allclose(
        got["target_prior"],
        source_prior
        + got["reliability"] * (np.asarray(raw["target_prior"]) - source_prior),
        atol=1e-9,
    )


def test_shrink_drops_a_shift_the_estimators_disagree_on():
    """A classifier unsure on every target input, leaning to class 0 a little:
    BBSE reads a mild shift, EM drives class 0's prior up; not trusted."""
    rng = np.random.default_rng(3)
    k = 4
    ys = rng.integers(0, k, 1000)
    ps = _confused(ys, k, 3.0, rng)
    pt = np.tile([0.4, 0.2, 0.2, 0.2], (1000, 1))
    raw = estimate_label_shift(ps, ys, pt)
    assert raw["imbalance"] > 1.5
    got = estimate_label_shift(ps, ys, pt, shrink=True)
    assert got["reliability"] == 0.0
    np.testing.assert_allclose(got["weights"], 1.0, atol=1e-9)
    assert got["imbalance"] == pytest.approx(
        max(got["source_prior"]) / min(got["source_prior"])
    )


def test_weights_are_clipped_so_no_class_vanishes():
    rng = np.random.default_rng(2)
    ys = rng.integers(0, 2, 500)
    yt = np.ones(500, int)  # class 0 absent from the target
    got = estimate_label_shift(
        _confused(ys, 2, 3.0, rng), ys, _confused(yt, 2, 3.0, rng), max_weight=10
    )
    assert min(got["target_prior"]) > 0
    assert got["imbalance"] <= 10 * 10 + 1e-6


def test_bad_input_is_refused_with_what_was_wrong():
    p = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="estimator in"):
        estimate_label_shift(p, [0, 1, 0, 1], p, estimator="kmm")
    with pytest.raises(ValueError, match="shape"):
        estimate_label_shift(np.ones(4), [0, 1, 0, 1], p)
    with pytest.raises(ValueError, match="not logits"):
        estimate_label_shift(p - 1, [0, 1, 0, 1], p)
    with pytest.raises(ValueError, match="same classes"):
        estimate_label_shift(p, [0, 1, 0, 1], np.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match="one label per source row"):
        estimate_label_shift(p, [0, 1], p)
    with pytest.raises(ValueError, match="Missing: \\[1\\]"):
        estimate_label_shift(p, [0, 0, 0, 0], p)
    with pytest.raises(ValueError, match="in \\[0, 2\\)"):
        estimate_label_shift(p, [0, 1, 2, 1], p)
    with pytest.raises(ValueError, match="max_weight > 1"):
        estimate_label_shift(p, [0, 1, 0, 1], p, max_weight=1)


def test_prior_correction_reweights_and_survives_saving(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, "softmax")])
    corrected = prior_corrected(model, [1.0, 4.0])
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    p = model.predict(x, verbose=0)
    expected = p * [1.0, 4.0] / (p * [1.0, 4.0]).sum(1, keepdims=True)
    np.testing.assert_allclose(corrected.predict(x, verbose=0), expected, atol=1e-6)
    path = tmp_path / "corrected.keras"
    corrected.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    assert loaded.layers[-1].get_config()["class_weights"] == [1.0, 4.0]


def test_prior_correction_refuses_bad_weights():
    with pytest.raises(ValueError, match="finite positive"):
        PriorCorrection([1.0, 0.0])
    with pytest.raises(ValueError, match="at least two"):
        PriorCorrection([1.0])
    with pytest.raises(ValueError, match="3 classes"):
        PriorCorrection([1.0, 2.0])(np.ones((1, 3), "float32"))

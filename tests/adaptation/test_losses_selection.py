import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.adaptation import (
    coral_loss,
    dev_risk,
    domain_classification_reports,
    importance_weights,
    mmd_loss,
    per_domain_accuracy,
)


def test_coral_matches_numpy_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 4)).astype("float32")
    b = (rng.normal(size=(20, 4)) * [1, 2, 3, 1]).astype("float32")
    expected = np.sum((np.cov(a, rowvar=False) - np.cov(b, rowvar=False)) ** 2) / (
        4 * 16
    )
    assert float(coral_loss(a, b)) == pytest.approx(expected, rel=1e-4)
    assert float(coral_loss(a, a)) == pytest.approx(0.0, abs=1e-7)


def test_mmd_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 3)).astype("float32")
    b = rng.normal(size=(40, 3)).astype("float32")
    near, far = float(mmd_loss(a, b)), float(mmd_loss(a, b + 2.0))
    assert float(mmd_loss(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert 0.0 <= near < far
    with pytest.raises(ValueError, match="kernel_multipliers"):
        mmd_loss(a, b, kernel_multipliers=(1.0, -1.0))


@pytest.mark.parametrize("method", ["classifier", "kmm"])
def test_importance_weights_favour_target_like_examples(method):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(150, 2))
    xt = rng.normal(size=(150, 2)) + [1.5, 0.0]
    w = importance_weights(xs, xt, method=method)
    assert w.shape == (150,) and np.all(w >= 0)
    assert w.mean() == pytest.approx(1.0, rel=1e-4)
    assert w[xs[:, 0] > 0.5].mean() > 2 * w[xs[:, 0] < -0.5].mean()
    with pytest.raises(ValueError, match="method"):
        importance_weights(xs, xt, method="nope")


def test_dev_risk_estimates_target_loss_better_than_source_mean():
    rng = np.random.default_rng(0)
    fs = rng.normal(size=(600, 1))
    ft = rng.normal(size=(600, 1)) + 1.0
    loss = lambda f: np.exp(f[:, 0])  # noqa: E731 - loss grows where target lives
    true_target = loss(ft).mean()
    risk = dev_risk(fs, loss(fs), ft)
    assert abs(risk - true_target) < abs(loss(fs).mean() - true_target)
    with pytest.raises(ValueError, match="one loss per source"):
        dev_risk(fs, loss(fs)[:5], ft)


def test_per_domain_accuracy_and_reports():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Softmax()])
    x = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    domains = {"source": (x, [0, 1]), "target": (x, [1, 1])}
    assert per_domain_accuracy(model, domains) == {"source": 1.0, "target": 0.5}
    reports = domain_classification_reports(
        model, domains, class_names=["a", "b"], output_dict=True
    )
    assert reports["target"]["b"]["recall"] == 0.5
    assert reports["source"]["a"]["f1-score"] == 1.0
    with pytest.raises(ValueError, match="domains"):
        per_domain_accuracy(model, {})


def test_dev_callback_logs_risk_and_works_on_plain_classifiers():
    from keras_transfer.adaptation import (
        DEVCallback,
        DomainAdaptationModel,
        deep_embedded_validation,
    )
    from keras_transfer.data import domain_pairs

    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(60, 3)).astype("float32"), rng.integers(0, 2, 60)
    xt = (rng.normal(size=(60, 3)) + 0.5).astype("float32")
    encoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, "relu")])
    model = DomainAdaptationModel(encoder, 2, method="mmd")
    model.compile("adam")
    dev = DEVCallback((xs[:30], ys[:30]), xt, every=1)
    history = model.fit(
        domain_pairs((xs[30:], ys[30:]), xt, 10), epochs=2, verbose=0, callbacks=[dev]
    ).history
    assert len(history["dev_risk"]) == 2 and np.all(np.isfinite(history["dev_risk"]))
    assert history["dev_risk"] == dev.history
    plain = model.inference_model()  # features = input of its last layer
    assert np.isfinite(deep_embedded_validation(plain, (xs[:30], ys[:30]), xt))

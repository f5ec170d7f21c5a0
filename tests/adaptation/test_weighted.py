"""IWDAN / IWCDAN: class-weighted domain losses and the weights' estimator."""

import json

import numpy as np
import pytest

import keras_transfer as kt
from keras_transfer._backend import keras
from keras_transfer.adaptation import (
    ClassWeightEstimator,
    ConditionalDomainAdversarial,
    DomainAdversarial,
    ImportanceWeightedConditionalDomainAdversarial,
    ImportanceWeightedDomainAdversarial,
    get_alignment_method,
    list_alignment_methods,
)

ops = keras.ops


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    fs = rng.normal(size=(6, 5)).astype("float32")
    ft = rng.normal(size=(4, 5)).astype("float32") + 1.0
    ls = rng.normal(size=(6, 3)).astype("float32")
    lt = rng.normal(size=(4, 3)).astype("float32")
    labels = np.array([0, 0, 1, 1, 2, 2], "int32")
    return fs, ft, ls, lt, labels


def _pair(weighted_cls, plain_cls):
    """A weighted and a plain method with the same discriminator weights."""
    weighted = weighted_cls(hidden_units=(8,))
    plain = plain_cls(hidden_units=(8,))
    weighted.build(((None, 5), (None, 3)))
    plain.build(((None, 5), (None, 3)) if plain.needs_logits else (None, 5))
    plain.discriminator.set_weights(weighted.discriminator.get_weights())
    return weighted, plain


@pytest.mark.parametrize(
    "weighted_cls, plain_cls",
    [
        (ImportanceWeightedDomainAdversarial, DomainAdversarial),
        (ImportanceWeightedConditionalDomainAdversarial, ConditionalDomainAdversarial),
    ],
)
def test_weights_of_one_are_the_plain_method_and_others_change_the_loss(
    weighted_cls, plain_cls
):
    fs, ft, ls, lt, labels = _batch()
    weighted, plain = _pair(weighted_cls, plain_cls)
    plain_loss = float(plain.alignment_loss(fs, ft, ls, lt, False)[0])
    same = weighted.alignment_loss(fs, ft, ls, lt, False, source_labels=labels)
    np.testing.assert_allclose(float(same[0]), plain_loss, rtol=1e-5)
    weighted.set_class_weights([3.0, 1.0, 0.2])
    moved = float(
        weighted.alignment_loss(fs, ft, ls, lt, False, source_labels=labels)[0]
    )
    assert abs(moved - plain_loss) > 1e-4
    # without labels (a call from outside a training step) it is the plain loss
    unlabelled = float(weighted.alignment_loss(fs, ft, ls, lt, False)[0])
    np.testing.assert_allclose(unlabelled, plain_loss, rtol=1e-5)


def test_iwdan_loss_is_the_class_weighted_binary_crossentropy():
    fs, ft, ls, lt, labels = _batch(1)
    method = ImportanceWeightedDomainAdversarial(hidden_units=(8,))
    method.build(((None, 5), (None, 3)))
    w = np.array([2.0, 1.0, 0.5], "float32")
    method.set_class_weights(w)
    loss = float(method.alignment_loss(fs, ft, ls, lt, False, source_labels=labels)[0])
    logits = np.asarray(method.discriminator(np.concatenate([fs, ft]))).reshape(-1)
    domain = np.r_[np.zeros(6), np.ones(4)]
    bce = np.logaddexp(0, logits) - domain * logits
    ws = w[labels] / w[labels].sum() * 6 / 10  # the source's share of the batch
    expected = (ws * bce[:6]).sum() + bce[6:].sum() / 10
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_bad_class_weights_are_refused():
    method = ImportanceWeightedDomainAdversarial(hidden_units=(8,))
    method.build(((None, 5), (None, 3)))
    with pytest.raises(ValueError, match="3 positive class weights"):
        method.set_class_weights([1.0, 2.0])
    with pytest.raises(ValueError, match="3 positive class weights"):
        method.set_class_weights([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="momentum in"):
        ClassWeightEstimator((np.zeros((2, 1)), [0, 1]), np.zeros((2, 1)), momentum=0)


def test_registered_and_serializable():
    assert {"iwdan", "iwcdan"} <= set(list_alignment_methods())
    method = get_alignment_method("iwcdan", hidden_units=(8,))
    again = type(method).from_config(method.get_config())
    assert isinstance(again, ImportanceWeightedConditionalDomainAdversarial)
    assert again.hidden_units == (8,)
    assert again.shrink_weights is False
    shrunk = get_alignment_method("iwdan", shrink_weights=True)
    assert type(shrunk).from_config(shrunk.get_config()).shrink_weights is True
    with pytest.raises(ValueError, match="shrink_weights True or False"):
        get_alignment_method("iwcdan", shrink_weights="no")


@pytest.mark.parametrize("shrink", [True, False])
def test_estimator_shrinks_an_estimate_the_estimators_disagree_on(shrink):
    k = 3
    method = get_alignment_method("iwcdan", hidden_units=(4,), shrink_weights=shrink)
    method.build(((None, 2), (None, k)))
    # a model whose inputs are the log-probabilities it predicts: a 90%-sure
    # source, and a target it is unsure about on every input, leaning to class 0
    model = keras.Sequential([keras.Input((k,)), keras.layers.Softmax()])
    model.method = method
    ys = np.arange(60) % k
    source = np.full((60, k), 0.05)
    source[np.arange(60), ys] = 0.9
    target = np.tile([0.5, 0.25, 0.25], (40, 1))
    estimator = ClassWeightEstimator((np.log(source), ys), np.log(target), momentum=1)
    estimator.set_model(model)
    estimator.on_epoch_end(0)
    weights = np.asarray(method.get_class_weights())
    if shrink:
        assert estimator.reliabilities == [0.0]
        np.testing.assert_allclose(weights, 1.0, atol=1e-6)
    else:
        assert estimator.reliabilities == [1.0]
        assert weights[0] > 1.2


def _label_shifted(n=300, seed=0):
    """Two classes apart in x0, the target shifted in x1 and 85% class 1."""
    rng = np.random.default_rng(seed)

    def make(y, shift):
        s = 2 * y - 1
        x0 = 1.5 * s + rng.normal(0, 0.7, len(y))
        x1 = s * 0.5 + rng.normal(shift, 1.0, len(y))
        return np.stack([x0, x1], 1).astype("float32")

    ys = rng.integers(0, 2, n)
    yt = (rng.random(n) < 0.85).astype(int)
    return (make(ys, 0.0), ys), (make(yt, 1.0), yt)


@pytest.mark.parametrize("method,shrink", [("iwdan", False), ("iwcdan", True)])
def test_adapt_estimates_the_targets_class_weights(method, shrink, tmp_path):
    (xs, ys), (xt, _) = _label_shifted()
    encoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, "relu")])
    result = kt.adapt(
        encoder,
        (xs, ys),
        xt,
        method=method,
        method_kwargs={"shrink_weights": True} if shrink else None,
        epochs=6,
        warmup=2,
        verbose=0,
    )
    weights = result.selection["candidates"][method]["class_weights"]
    # the target is 85% class 1 and the source balanced: w ≈ (0.3, 1.7)
    assert weights[1] > 1.2 and weights[0] < 0.7, weights
    reliability = result.selection["candidates"][method]["class_weight_reliability"]
    # a shrunk estimate keeps the share the two estimators agree on; a raw one all
    assert 0.0 < reliability < 1.0 if shrink else reliability == 1.0, reliability
    json.dumps(result.selection)  # what the CLI writes to selection.json
    # an imbalanced target's statistics are not put in the bottleneck by default
    assert result.selection["target_batchnorm"]["layers"] == 0
    path = tmp_path / "model.keras"
    result.model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(xt[:8], verbose=0),
        result.model.predict(xt[:8], verbose=0),
        atol=1e-6,
    )
    plain = kt.adapt(
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, "relu")]),
        (xs, ys),
        xt,
        method="dann",
        epochs=2,
        warmup=1,
        verbose=0,
    )
    assert plain.selection["candidates"]["dann"]["class_weights"] is None
    assert plain.selection["candidates"]["dann"]["class_weight_reliability"] is None
    assert plain.selection["target_batchnorm"]["layers"] == 1  # DANN's are
    # a combination with a class-weighted part is for an imbalanced target too
    combined = kt.adapt(
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, "relu")]),
        (xs, ys),
        xt,
        method="dann+iwcdan",
        epochs=2,
        warmup=1,
        verbose=0,
    )
    assert combined.selection["candidates"]["dann+iwcdan"]["class_weights"]
    assert combined.selection["target_batchnorm"]["layers"] == 0


def test_only_methods_that_ask_get_the_source_labels():
    from keras_transfer.adaptation import CombinedAlignment, DomainAdaptationModel
    from keras_transfer.adaptation.methods import AlignmentMethod
    from keras_transfer.data import domain_pairs

    class NoExtras(AlignmentMethod):  # a user's method written before extras
        def build(self, input_shape):
            self.built = True

        def alignment_loss(self, fs, ft, ls, lt, training):
            return ops.mean(fs) * 0.0, None, None

    (xs, ys), (xt, _) = _label_shifted(n=40)
    encoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, "relu")])
    model = DomainAdaptationModel(encoder, 2, method=NoExtras())
    model.compile("adam")
    model.fit(domain_pairs((xs, ys), xt, 8), epochs=1, verbose=0)
    combined = CombinedAlignment(["dann", "iwcdan"])
    assert combined.needs_source_labels
    assert not CombinedAlignment(["dann", "mcc"]).needs_source_labels

"""Domain-specific batch statistics while training (`domain_batchnorm`)."""

import numpy as np
import pytest

import keras_transfer as kt
from keras_transfer._backend import keras
from keras_transfer.adaptation import DomainAdaptationModel, adapt_batchnorm
from keras_transfer.data import domain_pairs


def _domains(n=32, offset=100.0, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, 4)).astype("float32")
    ys = (xs[:, 0] > 0).astype("int64")
    xt = (rng.normal(size=(n, 4)) + offset).astype("float32")
    return xs, ys, xt


def _bn_backbone():
    # momentum 0: the moving statistics are the last batch's, so one step shows
    # which batch they came from
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.0, name="bn")]
    )


@pytest.mark.parametrize("method", ["mmd", "self_training"])
def test_moving_statistics_follow_the_source_batch_only(method):
    xs, ys, xt = _domains()
    means = {}
    for domain_batchnorm in (False, True):
        backbone = _bn_backbone()
        model = DomainAdaptationModel(
            backbone, 2, method=method, domain_batchnorm=domain_batchnorm
        )
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        model.fit(domain_pairs((xs, ys), xt, batch_size=32), epochs=1, verbose=0)
        means[domain_batchnorm] = backbone.get_layer("bn").moving_mean.numpy()
    # joint batches: the mean of both domains; separate ones: the source's alone
    np.testing.assert_allclose(means[False], (xs.mean(0) + xt.mean(0)) / 2, atol=1e-3)
    np.testing.assert_allclose(means[True], xs.mean(0), atol=1e-4)


def test_each_domain_is_normalised_by_its_own_batch_statistics():
    # Two domains 100 apart: after a joint BatchNorm they sit about 2 apart (MMD
    # large); each normalised by its own statistics, they overlap (MMD small).
    xs, ys, xt = _domains()
    loss = {}
    for domain_batchnorm in (False, True):
        model = DomainAdaptationModel(
            _bn_backbone(), 2, method="mmd", domain_batchnorm=domain_batchnorm
        )
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        history = model.fit(
            domain_pairs((xs, ys), xt, batch_size=32), epochs=1, verbose=0
        )
        loss[domain_batchnorm] = history.history["domain_loss"][-1]
    assert loss[True] < 0.5 * loss[False]


def test_the_setting_round_trips_and_bad_values_are_refused():
    model = DomainAdaptationModel(
        _bn_backbone(), 2, method="mmd", domain_batchnorm=True
    )
    again = DomainAdaptationModel.from_config(model.get_config())
    assert again.domain_batchnorm is True
    assert (
        DomainAdaptationModel.from_config(
            DomainAdaptationModel(_bn_backbone(), 2).get_config()
        ).domain_batchnorm
        is False
    )
    with pytest.raises(ValueError, match="Expected domain_batchnorm to be True or"):
        DomainAdaptationModel(_bn_backbone(), 2, domain_batchnorm="yes")


def _encoder():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, "relu")])


def test_adapt_returns_a_model_normalised_for_the_target():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, size=(3, 4))
    ys = rng.integers(0, 3, 150)
    xs = (centres[ys] + rng.normal(size=(150, 4))).astype("float32")
    yt = rng.integers(0, 3, 120)
    xt = (1.5 * (centres[yt] + rng.normal(size=(120, 4))) + 3.0).astype("float32")
    result = kt.adapt(
        _encoder(),
        (xs, ys),
        xt,
        method="auto",
        candidates=["source_only", "mcc"],
        epochs=3,
        domain_batchnorm=True,
        verbose=0,
    )
    selection = result.selection
    assert selection["domain_batchnorm"] is True
    assert selection["target_batchnorm"]["layers"] == 1  # the bottleneck's
    # the returned statistics are the target's: re-estimating there changes
    # nothing, re-estimating on the source does
    before = result.model.predict(xt, verbose=0)
    copy = keras.models.clone_model(result.model)
    copy.set_weights(result.model.get_weights())
    adapt_batchnorm(copy, xt)
    np.testing.assert_allclose(copy.predict(xt, verbose=0), before, atol=1e-4)
    adapt_batchnorm(copy, xs)
    assert np.abs(copy.predict(xt, verbose=0) - before).max() > 1e-3
    # every candidate was scored as it predicts: with the target's statistics
    for name in ("source_only", "mcc"):
        model = result.candidate_model(name)
        np.testing.assert_allclose(
            model.predict(xt, verbose=0),
            result.target_probabilities[name],
            atol=1e-4,
        )
    # the held-out source accuracy with the source's statistics is kept apart
    trained = selection["target_batchnorm"]["source_accuracy_trained_statistics"]
    assert 0.0 <= trained <= 1.0


def test_an_explicit_source_only_run_is_left_alone():
    xs, ys, xt = _domains(n=120, offset=3.0)
    result = kt.adapt(
        _encoder(),
        (xs, ys),
        xt,
        method="source_only",
        epochs=2,
        domain_batchnorm=True,
        verbose=0,
    )
    assert result.selection["target_batchnorm"]["layers"] == 0


def test_adapt_refuses_what_it_cannot_run():
    xs, ys, xt = _domains(n=120, offset=3.0)
    with pytest.raises(ValueError, match="target_batchnorm must be 'auto' or True"):
        kt.adapt(
            _encoder(),
            (xs, ys),
            xt,
            domain_batchnorm=True,
            target_batchnorm=False,
            verbose=0,
        )
    with pytest.raises(ValueError, match="runs without one"):
        kt.adapt(_encoder(), (xs, ys), xt, domain_batchnorm=True, strategy="mirrored")
    with pytest.raises(ValueError, match="Expected domain_batchnorm to be True or"):
        kt.adapt(_encoder(), (xs, ys), xt, domain_batchnorm=1, verbose=0)


def test_the_cli_offers_it_with_the_librarys_default():
    import dataclasses

    from keras_transfer.adaptation.batchnorm import DEFAULT_DOMAIN_BATCHNORM
    from keras_transfer.config.sections import AdaptationConfig

    field = {f.name: f for f in dataclasses.fields(AdaptationConfig)}[
        "domain_batchnorm"
    ]
    assert field.default == DEFAULT_DOMAIN_BATCHNORM

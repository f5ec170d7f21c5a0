import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.adaptation import (
    DANN,
    ConditionalDomainAdversarial,
    DomainAdaptationModel,
    DomainLambdaScheduler,
    per_domain_accuracy,
)
from keras_transfer.data import domain_pairs
from keras_transfer.layers import GradientReversal


def two_domains(n=400, seed=0):
    """Class signal in x0; x1 is class-correlated in the source, shifted in the target."""
    rng = np.random.default_rng(seed)

    def make(target):
        y = rng.integers(0, 2, n)
        s = 2 * y - 1
        x0 = s * 1.5 + rng.normal(0, 0.6, n)
        x1 = rng.normal(4.0, 1.0, n) if target else s + rng.normal(0, 1.0, n)
        return np.stack([x0, x1], 1).astype("float32"), y.astype("int32")

    return make(False), make(True)


def tiny_encoder(dim=2, units=16):
    return keras.Sequential([keras.Input((dim,)), keras.layers.Dense(units, "relu")])


def domain_probe_accuracy(model, xs, xt):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    f = np.concatenate([model.features(xs), model.features(xt)])
    d = np.r_[np.zeros(len(xs)), np.ones(len(xt))]
    return cross_val_score(LogisticRegression(max_iter=1000), f, d, cv=3).mean()


@pytest.mark.large
def test_dann_beats_source_only_and_confuses_domains():
    (xs, ys), (xt, yt) = two_domains()
    results = {}
    for method in (None, "dann"):
        keras.utils.set_random_seed(0)
        model = DomainAdaptationModel(tiny_encoder(), 2, method=method)
        model.compile(keras.optimizers.SGD(0.02))
        callbacks = [DomainLambdaScheduler()] if method else []
        pairs = domain_pairs((xs, ys), xt, 64, seed=0)
        model.fit(pairs, epochs=30, verbose=0, callbacks=callbacks)
        acc = per_domain_accuracy(model, {"target": (xt, yt)})["target"]
        results[method] = (acc, domain_probe_accuracy(model, xs, xt))
    assert results["dann"][0] >= results[None][0] + 0.1, results
    assert results["dann"][1] < results[None][1], results


@pytest.mark.parametrize("method", ["dann", "cdan", "coral", "mmd", None])
def test_logs_come_from_trackers(method):
    (xs, ys), (xt, _) = two_domains(n=64)
    keras.utils.set_random_seed(0)
    model = DomainAdaptationModel(tiny_encoder(), 2, method=method)
    model.compile(keras.optimizers.SGD(0.0))  # frozen weights: logs are exact
    pairs = domain_pairs((xs, ys), xt, 16, shuffle=False)
    history = model.fit(pairs, epochs=1, verbose=0).history
    result = model.evaluate(pairs, verbose=0, return_dict=True)
    assert history["loss"][0] > 0.1
    assert history["loss"][0] == pytest.approx(result["loss"], rel=1e-5)
    expected = {"loss", "source_loss", "source_accuracy"}
    if method is not None:
        expected.add("domain_loss")
        adversarial = method in ("dann", "cdan")  # λ acts on gradients only
        weight = 1.0 if adversarial else model.lambda_
        total = history["source_loss"][0] + weight * history["domain_loss"][0]
        assert history["loss"][0] == pytest.approx(total, rel=1e-5)
    if method in ("dann", "cdan"):
        expected.add("domain_accuracy")
    assert set(history) == expected


def test_validation_data_on_labelled_target():
    (xs, ys), (xt, yt) = two_domains(n=64)
    model = DANN(tiny_encoder(), 2)
    model.compile("adam")
    history = model.fit(
        domain_pairs((xs, ys), xt, 16), validation_data=(xt, yt), epochs=2, verbose=0
    ).history
    assert len(history["val_accuracy"]) == 2
    expected = per_domain_accuracy(model, {"t": (xt, yt)})["t"]
    assert history["val_accuracy"][-1] == pytest.approx(expected)


def test_inference_model_has_no_grl_and_matches(tmp_path):
    (xs, ys), (xt, _) = two_domains(n=32)
    model = DANN(tiny_encoder(), 2, discriminator_units=(8, 8))
    model.compile("adam")
    model.fit(domain_pairs((xs, ys), xt, 16), epochs=1, verbose=0)
    inference = model.inference_model()
    layers = inference._flatten_layers(include_self=False, recursive=True)
    assert not any(isinstance(layer, GradientReversal) for layer in layers)
    assert not any("disc" in layer.name for layer in layers)
    np.testing.assert_allclose(
        inference.predict(xt, verbose=0), model.predict(xt, verbose=0), atol=1e-6
    )
    inference.save(tmp_path / "inference.keras")
    loaded = keras.models.load_model(tmp_path / "inference.keras")
    np.testing.assert_allclose(
        loaded.predict(xt, verbose=0), model.predict(xt, verbose=0), atol=1e-6
    )
    inference.export(str(tmp_path / "exported"), verbose=False)


@pytest.mark.parametrize("method", ["dann", "cdan"])
def test_full_model_save_load_round_trip(tmp_path, method):
    (xs, ys), (xt, _) = two_domains(n=32)
    model = DomainAdaptationModel(tiny_encoder(), 2, method=method)
    model.compile("adam")
    model.fit(domain_pairs((xs, ys), xt, 16), epochs=1, verbose=0)
    model.lambda_ = 0.42
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.method) is type(model.method)
    assert loaded.lambda_ == pytest.approx(0.42)
    np.testing.assert_allclose(
        loaded.predict(xt, verbose=0), model.predict(xt, verbose=0), atol=1e-6
    )
    loaded.fit(domain_pairs((xs, ys), xt, 16), epochs=1, verbose=0)  # still trains


def test_cdan_uses_randomized_map_for_large_inputs():
    method = ConditionalDomainAdversarial(max_multilinear_dim=16, random_dim=8)
    DomainAdaptationModel(tiny_encoder(units=8), 3, method=method)
    assert method._randomized and method.discriminator.input_shape == (None, 8)


def test_sample_weights_reach_the_source_loss():
    (xs, ys), (xt, _) = two_domains(n=32)
    model = DomainAdaptationModel(tiny_encoder(), 2, method="coral")
    model.compile(keras.optimizers.SGD(0.0))
    zero = np.zeros(len(xs), "float32")
    history = model.fit(domain_pairs((xs, ys, zero), xt, 16), epochs=1, verbose=0)
    assert history.history["source_loss"][0] == 0.0


def test_errors():
    (xs, ys), (xt, _) = two_domains(n=32)
    with pytest.raises(ValueError, match="num_classes"):
        DomainAdaptationModel(tiny_encoder())
    with pytest.raises(ValueError, match="method"):
        DomainAdaptationModel(tiny_encoder(), 2, method="nope")
    with pytest.raises(ValueError, match="lambda_"):
        DANN(tiny_encoder(), 2, lambda_=-1.0)
    model = DANN(tiny_encoder(), 2)
    with pytest.raises(ValueError, match="loss="):
        model.compile("adam", loss="mse")
    model.compile("adam")
    with pytest.raises(ValueError, match="domain_pairs"):
        model.fit(xs, ys, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="input shape"):
        DomainAdaptationModel(keras.layers.Dense(3), 2)


def test_loaded_backbone_encoder_with_trainable_policy():
    from keras_transfer.backbones import LoadedBackbone

    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, name="c1"),
            keras.layers.Conv2D(4, 3, name="c2"),
        ],
        name="tiny_backbone",
    )
    loaded = LoadedBackbone(
        model=backbone, preprocessor=keras.layers.Rescaling(1 / 255.0), spec="tiny"
    )
    model = DANN(loaded, 3, input_shape=(8, 8, 3), unfreeze_depth=1)
    assert [w.path for w in backbone.trainable_weights] == [
        "tiny_backbone/c2/kernel",
        "tiny_backbone/c2/bias",
    ]
    assert model.encoder.output_shape == (None, 4)  # pooled features
    x = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3)).astype("float32")
    assert model.inference_model().predict(x, verbose=0).shape == (4, 3)


def test_bottleneck_statistics_follow_a_short_run():
    # 40 steps (e.g. a 640-image source at batch 16): the moving statistics that
    # inference uses must match the features they normalise, or the held-out
    # source accuracy read by adapt's warm-up end and collapse guard is noise.
    # Keras's default momentum (0.99) kept a third of the true mean here.
    from keras_transfer.adaptation.methods import JointForward

    rng = np.random.default_rng(0)
    xs = rng.normal(3.0, 1.0, size=(160, 4)).astype("float32")
    ys = (xs[:, 0] > 3.0).astype("int32")
    xt = rng.normal(3.0, 1.0, size=(160, 4)).astype("float32")
    keras.utils.set_random_seed(0)
    model = DomainAdaptationModel(
        tiny_encoder(4, 8), 2, method=JointForward(), bottleneck_units=8
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(domain_pairs((xs, ys), xt, 16), epochs=4, verbose=0)
    bn = model.bottleneck.get_layer("bottleneck_bn")
    dense = model.bottleneck.get_layer("bottleneck_dense")
    true_mean = np.mean(
        keras.ops.convert_to_numpy(dense(model.encoder(np.concatenate([xs, xt])))), 0
    )
    moving = keras.ops.convert_to_numpy(bn.moving_mean)
    assert np.linalg.norm(moving - true_mean) < 0.1 * np.linalg.norm(true_mean)

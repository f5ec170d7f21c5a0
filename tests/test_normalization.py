"""BatchNorm layers that have never been trained get a momentum they can follow."""

import numpy as np
import pytest
from helpers import tiny_bn_backbone

from keras_transfer import build_classifier, load_model, set_batchnorm_momentum
from keras_transfer._backend import keras, tf
from keras_transfer.encoders import make_encoder
from keras_transfer.normalization import (
    FRESH_BATCHNORM_MOMENTUM,
    batchnorm_layers,
    check_batchnorm_momentum,
    fresh_batchnorm_layers,
)


def _bn_model(momenta=(0.999,)):
    layers = [keras.Input((3,))]
    layers += [
        keras.layers.BatchNormalization(momentum=m, name=f"bn{i}")
        for i, m in enumerate(momenta)
    ]
    return keras.Sequential(layers)


def test_fresh_layers_are_those_whose_statistics_never_moved():
    model = _bn_model((0.99, 0.99))
    assert fresh_batchnorm_layers(model) == batchnorm_layers(model)
    assert fresh_batchnorm_layers(keras.layers.BatchNormalization())  # not built
    model.get_layer("bn0").moving_variance.assign([1.0, 1.0, 1.5])  # one channel
    assert [layer.name for layer in fresh_batchnorm_layers(model)] == ["bn1"]
    model.compile("sgd", "mse")
    model.fit(np.full((4, 3), 5.0), np.ones((4, 3)), verbose=0)
    assert fresh_batchnorm_layers(model) == []


def test_auto_lowers_only_fresh_layers_whose_momentum_is_higher(caplog):
    model = _bn_model((0.999, 0.5, 0.999))
    trained = model.get_layer("bn2")
    trained.moving_mean.assign([0.3, -0.1, 2.0])  # pretrained statistics
    with caplog.at_level("INFO", logger="keras_transfer"):
        changed = set_batchnorm_momentum(model, label="mine")
    assert changed == [(model.get_layer("bn0"), 0.999)]
    assert [layer.momentum for layer in batchnorm_layers(model)] == [0.9, 0.5, 0.999]
    assert FRESH_BATCHNORM_MOMENTUM == 0.9
    assert "mine: 1 BatchNormalization layer(s) have never been trained" in caplog.text
    assert set_batchnorm_momentum(model) == []  # nothing left above 0.9
    assert set_batchnorm_momentum(model, None) == []
    changed = set_batchnorm_momentum(model, 0.95)  # a float: every layer
    assert [m for _, m in changed] == [0.9, 0.5, 0.999]
    assert {layer.momentum for layer in batchnorm_layers(model)} == {0.95}


@pytest.mark.parametrize("bad", ["fast", 1.0, -0.1, True, [0.9]])
def test_bad_momentum_is_refused_naming_what_is_accepted(bad):
    with pytest.raises(ValueError, match=r"'auto', None .* or a float in \[0, 1\)"):
        check_batchnorm_momentum(bad)
    with pytest.raises(ValueError, match="batchnorm_momentum"):
        build_classifier(tiny_bn_backbone(pretrained=False), 2, batchnorm_momentum=bad)


def _offset_data(n=64, seed=0):
    """Two classes told apart by the sign of a pattern, on inputs far from 0."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype("int32")
    pattern = np.where(y[:, None, None, None] == 1, 1.0, -1.0)
    x = 40.0 + 8.0 * pattern + rng.normal(0, 1, (n, 16, 16, 3))
    return x.astype("float32"), y


def test_builder_auto_changes_what_the_model_predicts_not_what_it_learns(
    tmp_path, capsys
):
    x, y = _offset_data()
    models = {}
    for momentum in ("auto", None):
        keras.utils.set_random_seed(3)
        model = build_classifier(
            tiny_bn_backbone(pretrained=False),
            2,
            unfreeze_depth="all",
            train_batchnorm=True,
            batchnorm_momentum=momentum,
        )
        printed = capsys.readouterr().out
        if momentum == "auto":
            assert "2 BatchNormalization layer(s) have never been trained" in printed
            assert "instead of 0.99" in printed
        else:
            assert "never been trained" not in printed
        model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
        models[momentum] = model
    auto, own = models["auto"], models[None]
    assert {layer.momentum for layer in batchnorm_layers(auto)} == {0.9}
    assert {layer.momentum for layer in batchnorm_layers(own)} == {0.99}
    # the same weights: training normalises with batch statistics
    for a, b in zip(auto.weights, own.weights, strict=True):
        if "moving_" not in a.path:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # 12 steps: 0.9 keeps 28% of the initial mean 0, 0.99 keeps 89% of it
    bn_auto = auto.backbone.get_layer("bn1").moving_mean.numpy()
    bn_own = own.backbone.get_layer("bn1").moving_mean.numpy()
    assert np.abs(bn_auto).mean() > 3.0 * np.abs(bn_own).mean()
    # the momentum is in the layer's config: a saved model keeps it
    path = tmp_path / "auto.keras"
    auto.save(path)
    reloaded = load_model(path)
    assert {layer.momentum for layer in batchnorm_layers(reloaded)} == {0.9}


def test_a_backbone_with_trained_statistics_keeps_its_momentum(capsys):
    backbone = tiny_bn_backbone(pretrained=False)
    for layer in batchnorm_layers(backbone):
        layer.momentum = 0.999
    probe = keras.Sequential([backbone])
    probe.compile("sgd", "mse")
    x, _ = _offset_data(16)
    probe.fit(x, np.zeros((16, 8, 8, 8)), verbose=0)  # statistics moved: "pretrained"
    capsys.readouterr()
    model = build_classifier(backbone, 2, unfreeze_depth="all", train_batchnorm=True)
    assert {layer.momentum for layer in batchnorm_layers(model)} == {0.999}
    assert "never been trained" not in capsys.readouterr().out


def test_make_encoder_applies_auto_and_can_keep_theirs():
    encoder = make_encoder(tiny_bn_backbone(pretrained=False), pooling="avg")
    assert {layer.momentum for layer in batchnorm_layers(encoder)} == {0.9}
    kept = make_encoder(
        tiny_bn_backbone(pretrained=False), pooling="avg", batchnorm_momentum=None
    )
    assert {layer.momentum for layer in batchnorm_layers(kept)} == {0.99}


def test_applications_backbone_without_weights_gets_0_9():
    model = build_classifier(
        "keras_applications:MobileNetV3Small",
        3,
        weights=None,
        input_shape=(32, 32, 3),
        unfreeze_depth="all",
        train_batchnorm=True,
    )
    assert {layer.momentum for layer in batchnorm_layers(model.backbone)} == {0.9}


def test_recompute_averages_trainable_layers_over_the_data_and_leaves_frozen_ones():
    from keras_transfer.normalization import recompute_batchnorm_statistics

    model = _bn_model((0.99, 0.99))
    frozen, trained = model.get_layer("bn0"), model.get_layer("bn1")
    frozen.trainable = False  # inference mode: passes x through almost unchanged
    x = np.random.default_rng(0).normal(5.0, 2.0, (300, 3)).astype("float32")
    assert recompute_batchnorm_statistics(model, (x, np.zeros(300)), batch_size=50) == 1
    np.testing.assert_allclose(trained.moving_mean.numpy(), x.mean(0), rtol=1e-3)
    assert trained.momentum == 0.99 and trained.trainable  # given back
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(3))
    # include_frozen (AdaBN) updates it too; a tf.data dataset of (x, y) works
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(300))).batch(60)
    assert recompute_batchnorm_statistics(model, data, include_frozen=True) == 2
    assert not frozen.trainable
    np.testing.assert_allclose(frozen.moving_mean.numpy(), x.mean(0), rtol=1e-3)
    with pytest.raises(ValueError, match="at least one batch"):
        recompute_batchnorm_statistics(model, x[:0])


def test_fine_tune_recomputes_only_after_auto_trained_untrained_batchnorm(caplog):
    from keras_transfer import fine_tune
    from keras_transfer.normalization import recompute_batchnorm_statistics

    x, y = _offset_data()
    said = "recomputed the moving statistics of 2 trained BatchNormalization"
    for pretrained in (False, True):
        keras.utils.set_random_seed(0)
        model = build_classifier(tiny_bn_backbone(pretrained=pretrained), 2)
        caplog.clear()
        with caplog.at_level("INFO", logger="keras_transfer"):
            fine_tune(model, (x, y), head_epochs=1, fine_tune_epochs=2, verbose=0)
        assert (said in caplog.text) == (not pretrained)
        if not pretrained:  # the statistics are the average over the training data
            bn = model.backbone.get_layer("bn1")
            after = bn.moving_mean.numpy().copy()
            recompute_batchnorm_statistics(model, x, batch_size=32)
            np.testing.assert_allclose(bn.moving_mean.numpy(), after, rtol=1e-4)


def test_recompute_after_training_says_why_it_skips(capsys):
    from keras_transfer.normalization import recompute_after_training

    model = _bn_model((0.99,))
    x = np.full((8, 3), 4.0, "float32")
    assert recompute_after_training(model, x, verbose=0) == 0  # "auto": not chosen
    assert recompute_after_training(model, iter([x]), when=True) == 0
    assert "cannot be read again" in capsys.readouterr().out
    assert recompute_after_training(model, x, when=False) == 0
    with pytest.raises(ValueError, match="recompute_batchnorm"):
        recompute_after_training(model, x, when="yes")


def _precise_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.BatchNormalization(name="frozen"),
            keras.layers.Dense(2),
        ]
    )


def test_precise_batchnorm_makes_inference_mode_match_training_mode():
    from keras_transfer.normalization import PreciseBatchNorm

    x = np.random.default_rng(0).normal(5.0, 2.0, (256, 3)).astype("float32")
    y = np.zeros((256, 2), "float32")
    runs = {}
    for precise in (None, PreciseBatchNorm(x, batch_size=256)):
        model = _precise_model()
        model.get_layer("frozen").trainable = False
        model.compile("sgd", loss="mse")
        callbacks = [] if precise is None else [precise]
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=callbacks)
        gap = np.abs(model(x, training=False) - model(x, training=True)).max()
        runs[precise is None] = (model, float(gap))
    model, gap = runs[False]
    assert gap < 1e-3  # the statistics are the data's: both modes agree
    assert runs[True][1] > 100 * gap  # momentum 0.99 over 4 steps: far from it
    h = model.layers[0](x).numpy()
    np.testing.assert_allclose(
        model.get_layer("bn").moving_mean.numpy(), h.mean(0), atol=1e-4
    )
    # the frozen layer keeps its statistics unless include_frozen
    np.testing.assert_array_equal(model.get_layer("frozen").moving_mean, np.zeros(4))


def test_precise_batchnorm_reads_datasets_and_frozen_layers_on_request():
    from keras_transfer._backend import tf
    from keras_transfer.normalization import PreciseBatchNorm

    x = np.random.default_rng(1).normal(3.0, 1.0, (64, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros((64, 2), "float32")))
    model = _precise_model()
    model.get_layer("frozen").trainable = False
    model.compile("sgd", loss="mse")
    precise = PreciseBatchNorm(data.batch(16), include_frozen=True)
    model.fit(data.batch(16), epochs=1, verbose=0, callbacks=[precise])
    assert precise.layers_updated == 2
    assert np.abs(model.get_layer("frozen").moving_mean.numpy()).max() > 0.0
    assert model.get_layer("frozen").trainable is False
    with pytest.raises(ValueError, match="Expected data for PreciseBatchNorm"):
        PreciseBatchNorm(None)
    with pytest.raises(ValueError, match="batch_size >= 1"):
        PreciseBatchNorm(x, batch_size=0)

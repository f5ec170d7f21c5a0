"""Builders: heads, pooling, compile defaults, .keras round trips, errors."""

import logging

import numpy as np
import pytest
from helpers import run_keras_roundtrip, tiny_bn_backbone

from keras_transfer import build_classifier, build_regressor
from keras_transfer._backend import keras
from keras_transfer.builders import compile_model, recompile


def _x(n=8, shape=(16, 16, 3)):
    return np.random.default_rng(0).uniform(0, 255, (n, *shape)).astype("float32")


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_classifier_roundtrip(head, tmp_path):
    model = build_classifier(tiny_bn_backbone(), 3, head=head, head_units=8)
    x = _x()
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    run_keras_roundtrip(model, x, tmp_path)


def test_multi_label_uses_sigmoid(tmp_path):
    model = build_classifier(tiny_bn_backbone(), 4, multi_label=True)
    y = np.random.default_rng(0).integers(0, 2, (8, 4)).astype("float32")
    history = model.fit(_x(), y, epochs=1, verbose=0)
    assert {"accuracy", "auc", "loss"} <= set(history.history)
    assert model.get_layer("predictions").activation.__name__ == "sigmoid"
    probs = model.predict(_x() / 255.0, verbose=0)
    assert probs.shape == (8, 4) and ((probs > 0) & (probs < 1)).all()
    run_keras_roundtrip(model, _x(), tmp_path)


def test_regressor_roundtrip(tmp_path):
    model = build_regressor(tiny_bn_backbone(), 2, unfreeze_depth="all")
    history = model.fit(_x(), np.ones((8, 2)), epochs=1, verbose=0)
    assert "mae" in history.history
    run_keras_roundtrip(model, _x(), tmp_path)


def test_keras_applications_classifier_roundtrip(tmp_path):
    model = build_classifier(
        "keras_applications:MobileNetV3Small",
        2,
        weights=None,
        input_shape=(32, 32, 3),
        unfreeze_depth=2,
    )
    x = _x(4, (32, 32, 3))
    model.fit(x, np.arange(4) % 2, epochs=1, verbose=0)
    run_keras_roundtrip(model, x, tmp_path, atol=1e-6)


@pytest.mark.parametrize("rank_shape", [(8,), (5, 8), (4, 4, 8)])
def test_pooling_by_rank(rank_shape):
    inputs = keras.Input(rank_shape)
    backbone = keras.Model(inputs, keras.layers.Dense(6)(inputs))
    model = build_classifier(backbone, 2)
    assert model.output.shape == (None, 2)


def test_flatten_pooling_keeps_every_position_and_needs_a_known_size():
    inputs = keras.Input((3, 4, 5))
    backbone = keras.Model(inputs, keras.layers.Dense(6)(inputs))
    model = build_classifier(backbone, 2, pooling="flatten", dropout=0.0)
    assert model.get_layer("pool").output.shape == (None, 3 * 4 * 6)
    model.fit(_x(4, (3, 4, 5)), np.arange(4) % 2, epochs=1, verbose=0)
    sized_by_input = keras.Sequential([keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="pooling='flatten' needs features of a"):
        build_classifier(
            sized_by_input, 2, pooling="flatten", input_shape=(None, None, 3)
        )


@pytest.mark.parametrize(
    "shape, expected",
    [((4, 4, 8), (None, 128)), ((5, 5, 8), (None, 8)), ((None, None, 8), (None, 8))],
)
def test_auto_pooling_flattens_maps_of_at_most_16_positions(shape, expected, caplog):
    from keras_transfer.heads import pool_features

    with caplog.at_level(logging.INFO, logger="keras_transfer"):
        assert tuple(pool_features(keras.Input(shape), "auto").shape) == expected
    said = "flattened" if expected[1] > shape[-1] else "average-pooled"
    assert f"[pooling] auto: feature maps of shape {shape} {said}" in caplog.text


def test_discriminative_learning_rates():
    model = build_classifier(
        tiny_bn_backbone(),
        2,
        unfreeze_depth="all",
        learning_rate=1e-2,
        backbone_learning_rate=1e-6,
    )
    assert isinstance(model.optimizer, keras.optimizers.MultiOptimizer)
    conv = model.get_layer("tiny_backbone").get_layer("conv3")
    head = model.get_layer("predictions")
    cb, hb = conv.kernel.numpy().copy(), head.kernel.numpy().copy()
    model.fit(_x(), np.arange(8) % 2, epochs=1, verbose=0)
    conv_step = np.abs(conv.kernel.numpy() - cb).max()
    head_step = np.abs(head.kernel.numpy() - hb).max()
    assert 0 < conv_step < head_step / 100


def test_recompile_changes_learning_rate():
    model = build_classifier(tiny_bn_backbone(), 2, learning_rate=1e-3)
    recompile(model, learning_rate=5e-4)
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-4)


def test_recompile_plain_model_from_config():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    recompile(model, learning_rate=0.01)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_recompile_after_a_hand_compile_keeps_that_compile():
    # model.compile_recipe describes compile_model's compile only: after the user
    # compiles by hand, recompile (and so set_trainable) follows the user's compile.
    from keras_transfer import set_trainable

    model = build_classifier(tiny_bn_backbone(), 2, learning_rate=1e-3)
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    set_trainable(model, 1)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    recompile(model, learning_rate=0.01)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_weight_decay_uses_adamw():
    model = build_classifier(tiny_bn_backbone(), 2, weight_decay=1e-4)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 1}, "Expected num_classes to be an int >= 2"),
        ({"num_classes": "3"}, "Expected num_classes"),
        ({"head": "deep"}, "Expected head to be one of"),
        ({"dropout": 1.5}, "Expected dropout to be in"),
        ({"learning_rate": -1.0}, "Expected learning_rate to be a number > 0"),
        (
            {"pooling": "median"},
            "Expected pooling to be 'avg', 'max', 'flatten' or 'auto'",
        ),
        ({"unfreeze_depth": -3}, "Expected unfreeze_depth"),
    ],
)
def test_bad_builder_arguments(kwargs, match):
    args = {"num_classes": 2, **kwargs}
    num_classes = args.pop("num_classes")
    with pytest.raises(ValueError, match=match):
        build_classifier(tiny_bn_backbone(), num_classes, **args)


def test_backbone_without_input_shape_needs_one():
    from keras_transfer.backbones import LoadedBackbone

    bb = LoadedBackbone(keras.layers.Dense(4), modality="image", spec="dense")
    with pytest.raises(ValueError, match="Pass input_shape="):
        build_classifier(bb, 2)
    model = build_classifier(bb, 2, input_shape=(3,))
    assert model.output.shape == (None, 2)


def test_bad_task():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Expected task"):
        compile_model(model, task="ranking")


def test_an_input_too_small_for_the_backbone_is_refused_with_its_shape():
    with pytest.raises(
        ValueError,
        match=r"large enough for the backbone .*MobileNetV2"
        r".*\(16, 16, 3\) to nothing",
    ):
        build_classifier(
            "keras_applications:MobileNetV2", 3, weights=None, input_shape=(16, 16, 3)
        )

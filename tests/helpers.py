"""Test helpers reused by every public layer and model (keras-hub style)."""

from __future__ import annotations

import os

import numpy as np


def run_config_roundtrip(layer_cls, init_kwargs: dict) -> None:
    """get_config returns every constructor argument; from_config rebuilds it."""
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"{key} missing from get_config()"
        assert config[key] == value, (key, config[key], value)
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config


def run_keras_roundtrip(model, inputs, tmp_path, atol: float = 0.0) -> object:
    """Saves as .keras, reloads, and checks predictions are the same."""
    import keras

    path = os.path.join(str(tmp_path), "model.keras")
    expected = model.predict(inputs, verbose=0)
    model.save(path)
    reloaded = keras.models.load_model(path)
    got = reloaded.predict(inputs, verbose=0)
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)
    return reloaded


def weights_snapshot(weights) -> list[np.ndarray]:
    return [np.array(w.numpy(), copy=True) for w in weights]


def tiny_bn_backbone(input_shape=(16, 16, 3)):
    """A 4-layer CNN backbone with BatchNormalization (a stand-in for a pretrained net)."""
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv3")(x)
    return keras.Model(inputs, x, name="tiny_backbone")

"""Shared fixtures for the export tests: a small digits classifier, trained once."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer._backend import keras


@pytest.fixture(scope="session")
def digits():
    """(x_train, y_train, x_test, y_test) uint8 16x16x3 digits."""
    from keras_transfer.datasets import digits_domains

    source, _ = digits_domains(size=16)
    return source.x_train, source.y_train, source.x_test, source.y_test


@pytest.fixture(scope="session")
def digits_model(digits):
    """A tiny CNN with an augmentation layer, trained to ~90% on source digits."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.RandomFlip("horizontal", name="flip")(inputs)
    x = keras.layers.Rescaling(1 / 255.0)(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="digits_small")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def class_names():
    return [f"digit_{i}" for i in range(10)]


@pytest.fixture(scope="session")
def keras_probs():
    """Reference probabilities of a Keras model on (uint8) inputs."""

    def run(model, x):
        return np.asarray(model.predict_on_batch(x.astype("float32")))

    return run

"""benchmarks/tflite_routes.py: each route converts and is measured the same way."""

import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from keras_transfer._backend import keras

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tflite_routes.py"


@pytest.fixture(scope="module")
def routes():
    return SimpleNamespace(**runpy.run_path(str(_SCRIPT), run_name="tflite_routes"))


def test_every_route_converts_and_verifies_a_model_with_augmentation(routes):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.RandomFlip()(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(0)
    data = (rng.uniform(0, 1, (16, 8, 8, 3)).astype("float32"), None)
    data += (rng.uniform(0, 1, (20, 8, 8, 3)).astype("float32"),)
    rows = [routes.measure(r, model, model, "float32", data) for r in routes.ROUTES]
    assert [row["route"] for row in rows] == list(routes.ROUTES)
    for row in rows:
        assert row["converts"] and row["verifies"], row
        assert row["input"]["shape_signature"] == [-1, 8, 8, 3]
    # Same outputs from each route, measured on the same inputs.
    assert len({row["max_abs_diff"] for row in rows}) == 1
    assert rows[0]["agreement"] == 1.0


def test_a_failing_route_is_a_row_not_a_crash(routes):
    row = routes.measure("litert", None, object(), "float32", (np.zeros((1, 2)),) * 3)
    assert row["converts"] is False and "error" in row

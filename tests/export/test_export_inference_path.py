"""Only the inference path is exported: no augmentation, noise, GRL or DANN head."""

from __future__ import annotations

import json

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.export import (
    export_tflite,
    is_training_only,
    register_training_only_layer,
)


class ShakeInTraining(keras.layers.Layer):
    """A custom training-only layer: adds noise when training."""

    def call(self, x, training=None):
        if training:
            return x + keras.random.normal(keras.ops.shape(x))
        return x


def test_augmentation_noise_and_registered_layers_are_stripped(tmp_path):
    register_training_only_layer(ShakeInTraining)
    assert is_training_only(ShakeInTraining())
    assert is_training_only(keras.layers.RandomRotation(0.1))
    assert not is_training_only(keras.layers.Rescaling(0.5))
    keras.utils.set_random_seed(0)
    augment = keras.Sequential(
        [keras.layers.RandomFlip(), keras.layers.RandomContrast(0.2)], name="augment"
    )
    inputs = keras.Input((8, 8, 3))
    x = augment(inputs)
    x = keras.layers.GaussianNoise(0.1, name="noise")(x)
    x = ShakeInTraining(name="shake")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    data = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 3)).astype("float32")
    report = export_tflite(model, tmp_path / "aug", verify_data=data)
    # The all-augmentation Sequential is named once, as a block.
    assert sorted(report.stripped_layers) == ["augment", "noise", "shake"]
    assert report.top1_agreement == 1.0
    manifest = json.loads((tmp_path / "aug" / "manifest.json").read_text())
    assert len(manifest["stripped_layers"]) == 3
    # The original model still has its augmentation (the clone shares weights only).
    assert [la.name for la in model.layers][1] == "augment"


class FakeDANN:
    """Stands in for a DANN object: a two-output training model + inference_model()."""

    def __init__(self):
        inputs = keras.Input((6,))
        features = keras.layers.Dense(8, activation="relu")(inputs)
        labels = keras.layers.Dense(3, activation="softmax", name="label")(features)
        domain = keras.layers.Dense(1, activation="sigmoid", name="domain")(features)
        self.training_model = keras.Model(inputs, [labels, domain])
        self._inference = keras.Model(inputs, labels)

    def inference_model(self):
        return self._inference


def test_dann_like_object_exports_its_inference_model(tmp_path):
    dann = FakeDANN()
    x = np.random.default_rng(0).normal(size=(20, 6)).astype("float32")
    report = export_tflite(dann, tmp_path / "dann", verify_data=x)
    assert any("inference_model" in note for note in report.notes)
    manifest = json.loads((tmp_path / "dann" / "manifest.json").read_text())
    assert manifest["outputs"][0]["shape"] == [-1, 3]  # no domain output


def test_real_dann_exports_without_grl_or_discriminator(tmp_path):
    from keras_transfer.adaptation import DANN

    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    dann = DANN(encoder, num_classes=3)
    x = np.random.default_rng(1).normal(size=(24, 4)).astype("float32")
    report = export_tflite(dann, tmp_path / "dann", verify_data=x)
    assert report.top1_agreement == 1.0
    manifest = json.loads((tmp_path / "dann" / "manifest.json").read_text())
    assert manifest["outputs"][0]["shape"] == [-1, 3]


def test_gradient_reversal_and_augment_stack_are_stripped(tmp_path):
    from keras_transfer.augment import build_augmentation
    from keras_transfer.layers import GradientReversal

    augmentation = build_augmentation(flip="horizontal")
    inputs = keras.Input((8, 8, 3))
    x = GradientReversal(name="grl")(augmentation(inputs))
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    data = np.random.default_rng(2).uniform(0, 1, (16, 8, 8, 3)).astype("float32")
    report = export_tflite(model, tmp_path / "grl", verify_data=data)
    assert "grl" in report.stripped_layers
    assert augmentation.name in report.stripped_layers


def test_every_registered_built_in_layer_is_left_out(tmp_path):
    """One model holding every built-in training-only class exports without any."""
    from layers.training_only_cases import BUILT_IN, make

    from keras_transfer.layers import GradientReversal, training_only

    inputs = keras.Input((8, 8, 3))
    x = inputs
    layers = [make(cls) for cls in BUILT_IN] + [GradientReversal()]
    for layer in layers:
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    data = np.random.default_rng(3).uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    report = export_tflite(model, tmp_path / "all", verify_data=data)
    assert sorted(report.stripped_layers) == sorted(layer.name for layer in layers)
    assert report.top1_agreement == 1.0 and report.max_abs_diff < 1e-5
    # The exported graph holds none of them (the clone has Identity in their place).
    from keras_transfer.export._inference import resolve_inference_model

    stripped, _, _ = resolve_inference_model(model)
    assert not any(training_only.is_training_only(la) for la in stripped.layers)
    assert len(stripped.layers) == len(model.layers)

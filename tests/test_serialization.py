"""Every registered keras-transfer class goes through the same round-trip helper.

Layers and models: config round trip plus `.keras` save / `keras_transfer.load_model`
with identical outputs (`helpers.run_serialization_test`). Losses, metrics and
schedules: config round trip plus a compiled model saved and reloaded, compared by
value. The text classes (they need a tiny BERT) run the same helper in
tests/text/test_text_serialization.py. `test_every_registered_class_is_covered`
fails when a new registered class has no case.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import pytest
from helpers import compiled_roundtrip, run_serialization_test

import keras_transfer
from keras_transfer import adaptation
from keras_transfer.adaptation import schedules
from keras_transfer.adaptation.methods import JointForward
from keras_transfer.augment import LabelAccuracy, SmoothedCrossentropy
from keras_transfer.backbones import ApplicationPreprocessing, HubLayer
from keras_transfer.distillation import Distiller
from keras_transfer.layers import GradientReversal

X = np.random.default_rng(0).random((6, 4)).astype("float32")
TEXT_CASES = ("TextEncoder", "TokenIdsEncoder")  # tests/text/test_text_serialization.py


def _encoder():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(8, activation="relu")(inputs))


def _da_model(method=None, **kwargs):
    model = adaptation.DomainAdaptationModel(
        _encoder(), 3, method=method or "dann", **kwargs
    )
    model(X)
    return model


ALIGNMENT_METHODS = {
    "DomainAdversarial": (adaptation.DomainAdversarial, {"hidden_units": (8,)}),
    "ConditionalDomainAdversarial": (
        adaptation.ConditionalDomainAdversarial,
        {"hidden_units": (8,), "lambda_": 0.5},
    ),
    "CORALAlignment": (adaptation.CORALAlignment, {"lambda_": 0.3}),
    "MMDAlignment": (
        adaptation.MMDAlignment,
        {"lambda_": 0.3, "kernel_multipliers": (0.5, 1.0)},
    ),
    "MinimumClassConfusion": (adaptation.MinimumClassConfusion, {"temperature": 2.0}),
    "EntropyMinimization": (adaptation.EntropyMinimization, {"diversity": 0.5}),
    "BatchNuclearNorm": (adaptation.BatchNuclearNorm, {"lambda_": 0.2}),
    "SelfTraining": (adaptation.SelfTraining, {"threshold": 0.8}),
    "JointForward": (JointForward, {}),
    "ImportanceWeightedDomainAdversarial": (
        adaptation.ImportanceWeightedDomainAdversarial,
        {"hidden_units": (8,)},
    ),
    "ImportanceWeightedConditionalDomainAdversarial": (
        adaptation.ImportanceWeightedConditionalDomainAdversarial,
        {"hidden_units": (8,), "lambda_": 0.5},
    ),
}


@pytest.mark.parametrize("name", sorted(ALIGNMENT_METHODS))
def test_alignment_method_roundtrip(name, tmp_path):
    cls, kwargs = ALIGNMENT_METHODS[name]
    method = cls(**kwargs)
    model = _da_model(method)
    run_serialization_test(
        method, tmp_path, inputs=X, model=model, expected_config=kwargs
    )


def test_combined_alignment_roundtrip(tmp_path):
    parts = [adaptation.DomainAdversarial(hidden_units=(8,)), "mcc"]
    method = adaptation.CombinedAlignment(parts)
    model = _da_model(method)
    reloaded = run_serialization_test(method, tmp_path, inputs=X, model=model)
    (restored,) = [
        layer
        for layer in reloaded._flatten_layers(recursive=True)
        if isinstance(layer, adaptation.CombinedAlignment)
    ]
    assert [type(p).__name__ for p in restored.parts] == [
        "DomainAdversarial",
        "MinimumClassConfusion",
    ]
    assert restored.parts[0].hidden_units == (8,)


def test_prior_correction_roundtrip(tmp_path):
    probabilities = np.full((2, 3), 1 / 3, "float32")
    run_serialization_test(
        adaptation.PriorCorrection([0.5, 1.0, 1.5]),
        tmp_path,
        inputs=probabilities,
        expected_config={"class_weights": [0.5, 1.0, 1.5]},
    )


def test_gradient_reversal_roundtrip(tmp_path):
    run_serialization_test(
        GradientReversal(lambda_=0.3),
        tmp_path,
        inputs=X,
        expected_config={"lambda_": 0.3},
    )


@pytest.mark.parametrize("bottleneck_units", [None, 6])
def test_domain_adaptation_model_roundtrip(bottleneck_units, tmp_path):
    model = _da_model("coral", bottleneck_units=bottleneck_units)
    run_serialization_test(
        model,
        tmp_path,
        inputs=X,
        expected_config={"bottleneck_units": bottleneck_units, "num_classes": 3},
    )


def test_dann_roundtrip(tmp_path):
    model = adaptation.DANN(_encoder(), 3, discriminator_units=(8,), lambda_=0.4)
    model(X)
    run_serialization_test(model, tmp_path, inputs=X)


def test_distiller_roundtrip(tmp_path):
    teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    distiller = Distiller(teacher, student, temperature=3.0, alpha=0.2)
    distiller(X)
    run_serialization_test(
        distiller,
        tmp_path,
        inputs=X,
        expected_config={"temperature": 3.0, "alpha": 0.2},
    )


def test_application_preprocessing_roundtrip(tmp_path):
    images = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    run_serialization_test(
        ApplicationPreprocessing("ResNet50"), tmp_path, inputs=images
    )


def test_hub_layer_roundtrip(tmp_path):
    import tensorflow as tf
    from test_backbones import make_hub_module

    handle = str(tmp_path / "module")
    tf.saved_model.save(make_hub_module(), handle)
    layer = HubLayer(handle, trainable=True)
    run_serialization_test(layer, tmp_path, inputs=X)


def test_smoothed_crossentropy_roundtrip(tmp_path):
    loss = SmoothedCrossentropy(label_smoothing=0.1)
    run_serialization_test(loss, tmp_path, expected_config={"label_smoothing": 0.1})
    model, reloaded = compiled_roundtrip(tmp_path, loss=loss)
    y = np.arange(6) % 3
    assert isinstance(reloaded.loss, SmoothedCrossentropy)
    assert reloaded.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(
        reloaded.evaluate(X, y, verbose=0), model.evaluate(X, y, verbose=0), rtol=1e-6
    )


def test_label_accuracy_roundtrip(tmp_path):
    metric = LabelAccuracy(name="label_accuracy")
    run_serialization_test(metric, tmp_path)
    model, reloaded = compiled_roundtrip(tmp_path, metric=metric)
    y = np.arange(6) % 3
    got = reloaded.evaluate(X, y, verbose=0, return_dict=True)
    want = model.evaluate(X, y, verbose=0, return_dict=True)
    assert got == pytest.approx(want) and "label_accuracy" in got


def test_dann_learning_rate_schedule_roundtrip(tmp_path):
    schedule = schedules.DANNLearningRateSchedule(0.02, decay_steps=50, alpha=5.0)
    run_serialization_test(
        schedule,
        tmp_path,
        expected_config={
            "initial_learning_rate": 0.02,
            "decay_steps": 50,
            "alpha": 5.0,
        },
    )
    _, reloaded = compiled_roundtrip(tmp_path, learning_rate=schedule)
    restored = reloaded.optimizer._learning_rate
    assert isinstance(restored, schedules.DANNLearningRateSchedule)
    steps = [0, 10, 50]
    np.testing.assert_allclose(
        [float(restored(s)) for s in steps], [float(schedule(s)) for s in steps]
    )


def test_every_registered_class_is_covered():
    from keras_transfer.saving import register_all

    register_all()
    registered = {
        key.split(">", 1)[1]
        for key in keras.saving.get_custom_objects()
        if key.startswith("keras_transfer>")
    }
    source = pathlib.Path(__file__).read_text()
    covered = {name for name in registered if f"{name}(" in source}
    covered |= set(ALIGNMENT_METHODS) | set(TEXT_CASES)
    text_tests = pathlib.Path(__file__).parent / "text" / "test_text_serialization.py"
    assert all(name in text_tests.read_text() for name in TEXT_CASES)
    missing = sorted(registered - covered)
    assert not missing, f"add a round-trip case for: {missing}"
    assert keras_transfer.load_model is not None

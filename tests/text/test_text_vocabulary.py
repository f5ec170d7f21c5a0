"""build_text_classifier's shared arguments (strategy, backbone_learning_rate,
**backbone_kwargs) and the text pooling rename "mean" -> "avg" (docs/vocabulary.md)."""

import json
import warnings
import zipfile

import numpy as np
import pytest
from conftest import make_tiny_text_backbone
from helpers import weights_snapshot

from keras_transfer._backend import keras, tf
from keras_transfer.distribute import maybe_distribute
from keras_transfer.text import TextEncoder, build_text_classifier
from keras_transfer.text.adaptation import build_text_encoder_model

TEXTS = ["The pasta was great.", "The battery stopped working."]


def _no_deprecation(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return fn(*args, **kwargs)


def _fit(model, steps=2):
    x = tf.constant(TEXTS * 4)
    model.fit(
        x, np.arange(8) % 2, batch_size=4, epochs=1, steps_per_epoch=steps, verbose=0
    )


# ------------------------------------------------------------ shared arguments
def test_strategy_builds_and_compiles_in_its_scope():
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    with maybe_distribute(mirrored):  # a passed backbone is made in the scope too
        tiny = make_tiny_text_backbone()
    model = build_text_classifier(
        tiny, 2, sequence_length=16, unfreeze_depth=1, strategy=mirrored
    )
    assert model.distribute_strategy is mirrored
    head = model.get_layer("predictions").kernel
    assert isinstance(head.value, tf.distribute.DistributedValues)
    before = weights_snapshot([head])
    _fit(model)
    assert not np.array_equal(before[0], weights_snapshot([head])[0])


def test_strategy_name_is_checked(tiny_text_backbone):
    with pytest.raises(ValueError, match="strategy='nope'"):
        build_text_classifier(
            tiny_text_backbone, 2, sequence_length=16, strategy="nope"
        )


def test_backbone_learning_rate_gives_the_backbone_its_own_rate(tiny_text_backbone):
    model = build_text_classifier(
        tiny_text_backbone,
        2,
        sequence_length=16,
        unfreeze_depth="all",
        learning_rate=1e-2,
        backbone_learning_rate=1e-5,
    )
    assert model.compile_recipe["backbone_learning_rate"] == 1e-5
    rates = sorted(float(o.learning_rate) for o in model.optimizer.optimizers)
    assert rates == pytest.approx([1e-5, 1e-2])
    backbone = model.backbone
    head = model.get_layer("predictions")
    bb_before = weights_snapshot(backbone.trainable_weights)
    head_before = weights_snapshot(head.weights)
    _fit(model)
    # Adam moves each weight by about its learning rate per step.
    bb_step = max(
        np.abs(a - b).max()
        for a, b in zip(bb_before, weights_snapshot(backbone.trainable_weights))
    )
    head_step = np.abs(head_before[0] - weights_snapshot(head.weights)[0]).max()
    assert 0 < bb_step < 1e-4 < 5e-3 < head_step
    with pytest.raises(ValueError, match="backbone_learning_rate"):
        build_text_classifier(
            tiny_text_backbone, 2, sequence_length=16, backbone_learning_rate=0
        )


def test_backbone_kwargs_reach_the_loader(tiny_text_backbone, tmp_path):
    preset = tmp_path / "tiny_preset"
    tiny_text_backbone.model.save_to_preset(str(preset))
    tiny_text_backbone.preprocessor.save_to_preset(str(preset))
    spec = f"keras_hub:{preset}"
    saved = weights_snapshot(tiny_text_backbone.model.weights)

    loaded = build_text_classifier(spec, 2, sequence_length=16, compile=False)
    for a, b in zip(saved, weights_snapshot(loaded.backbone.weights)):
        np.testing.assert_array_equal(a, b)
    # load_weights=False goes to keras_hub's from_preset: a fresh random backbone.
    fresh = build_text_classifier(
        spec, 2, sequence_length=16, compile=False, load_weights=False
    )
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(saved, weights_snapshot(fresh.backbone.weights))
    )
    assert fresh.predict(tf.constant(TEXTS), verbose=0).shape == (2, 2)
    with pytest.raises(ValueError, match=r"only with a spec string.*load_weights"):
        build_text_classifier(
            tiny_text_backbone, 2, sequence_length=16, load_weights=False
        )


# ------------------------------------------------------------- pooling "mean"
def test_avg_is_the_default_and_mean_is_a_deprecated_alias(tiny_text_backbone):
    new = _no_deprecation(
        build_text_classifier,
        tiny_text_backbone,
        2,
        sequence_length=16,
        compile=False,
    )
    encoder = new.get_layer("text_encoder")
    assert encoder.pooling == "avg"
    with pytest.warns(
        DeprecationWarning, match="build_text_classifier: pooling='mean'.*'avg'"
    ) as rec:
        old = build_text_classifier(encoder, 2, pooling="mean", compile=False)
    assert rec[0].filename == __file__  # points at the caller's line
    old.get_layer("predictions").set_weights(new.get_layer("predictions").get_weights())
    texts = tf.constant(TEXTS)
    np.testing.assert_allclose(
        old.predict(texts, verbose=0), new.predict(texts, verbose=0), atol=1e-6
    )
    with pytest.warns(DeprecationWarning, match="TextEncoder: pooling='mean'"):
        layer = TextEncoder(
            tiny_text_backbone.model, tiny_text_backbone.preprocessor, pooling="mean"
        )
    assert layer.pooling == "avg"
    np.testing.assert_allclose(layer(texts), encoder(texts), atol=1e-6)
    with pytest.warns(DeprecationWarning, match="build_text_encoder_model: pooling"):
        build_text_encoder_model(encoder, pooling="mean")
    with pytest.raises(ValueError, match=r"'avg', 'cls', 'pooled'.*pooling='max'"):
        TextEncoder(
            tiny_text_backbone.model, tiny_text_backbone.preprocessor, pooling="max"
        )


def test_text_encoder_config_with_mean_loads_silently(tiny_text_backbone):
    encoder = TextEncoder(tiny_text_backbone.model, tiny_text_backbone.preprocessor)
    config = encoder.get_config()
    assert config["pooling"] == "avg"
    config["pooling"] = "mean"  # as written by keras_transfer 0.1
    clone = _no_deprecation(TextEncoder.from_config, config)
    assert clone.pooling == "avg" and clone.get_config()["pooling"] == "avg"


def test_keras_file_saved_with_mean_pooling_loads(tiny_text_backbone, tmp_path):
    model = build_text_classifier(tiny_text_backbone, 2, sequence_length=16)
    texts = tf.constant(TEXTS)
    expected = model.predict(texts, verbose=0)
    new_path, old_path = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new_path)
    found = []

    def to_mean(node):
        if isinstance(node, dict):
            if node.get("class_name") == "TextEncoder":
                node["config"]["pooling"] = "mean"
                found.append(node)
            for value in node.values():
                to_mean(value)
        elif isinstance(node, list):
            for value in node:
                to_mean(value)

    with zipfile.ZipFile(new_path) as src, zipfile.ZipFile(old_path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                saved = json.loads(data)
                to_mean(saved)
                data = json.dumps(saved).encode()
            dst.writestr(item, data)
    assert len(found) == 1
    loaded = _no_deprecation(keras.saving.load_model, old_path)
    assert loaded.get_layer("text_encoder").pooling == "avg"
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), expected, atol=1e-6)

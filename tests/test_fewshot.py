"""Tests of keras_transfer.fewshot."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.fewshot import (
    ProtoNetClassifier,
    adapt_on_support,
    mean_confidence_interval,
    reptile,
    sample_episode,
)


def _clusters(n_classes=10, per_class=20, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.5, (n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    x = (centers[y] + rng.normal(0, 0.3, (len(y), dim))).astype("float32")
    return x, y


def _encoder(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, "relu", kernel_initializer=init)]
    )


def test_sample_episode_shapes_and_relabelling():
    x, y = _clusters()
    rng = np.random.default_rng(0)
    xs, ys, xq, yq, classes = sample_episode(x, y, 5, 2, 3, rng)
    assert xs.shape == (10, 8) and xq.shape == (15, 8)
    assert sorted(set(ys)) == list(range(5)) and len(set(classes)) == 5
    with pytest.raises(ValueError, match="n_way"):
        sample_episode(x, y, 11, 1, 1, rng)
    mean, half = mean_confidence_interval([1.0, 0.0, 1.0, 0.0])
    assert mean == 0.5 and half == pytest.approx(
        1.96 * np.std([1, 0, 1, 0], ddof=1) / 2
    )


def test_protonet_near_perfect_on_separable_clusters_and_prototypes_are_means():
    x, y = _clusters()
    proto = ProtoNetClassifier(_encoder())
    before = proto.encoder.get_weights()[0].copy()
    hist = proto.fit_episodes(
        x[y < 5],
        y[y < 5],
        n_way=3,
        k_shot=2,
        n_query=4,
        episodes=30,
        optimizer=keras.optimizers.Adam(1e-2),
    )
    assert len(hist["loss"]) == 30 and np.mean(hist["loss"][-10:]) < 0.2
    assert not np.allclose(before, proto.encoder.get_weights()[0])
    # Held-out classes 5..9, labels kept as they are.
    held_x, held_y = x[y >= 5], y[y >= 5]
    support = np.concatenate([np.flatnonzero(held_y == c)[:3] for c in range(5, 10)])
    proto.fit_support(held_x[support], held_y[support])
    emb = proto.embed(held_x[support])
    for i, c in enumerate(proto.classes_):
        np.testing.assert_allclose(
            proto.prototypes_[i], emb[held_y[support] == c].mean(0), rtol=1e-5
        )
    assert list(proto.classes_) == [5, 6, 7, 8, 9]
    assert np.mean(proto.predict(held_x) == held_y) >= 0.97
    probs = proto.predict_proba(held_x[:4])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    mean, half = proto.evaluate_episodes(
        held_x, held_y, n_way=5, k_shot=1, n_query=5, episodes=20
    )
    assert mean >= 0.95 and 0 <= half < 0.1


def test_reptile_moves_weights_and_adapts():
    x, y = _clusters(dim=8)
    model = keras.Sequential([_encoder(1), keras.layers.Dense(3)])
    before = [w.copy() for w in model.get_weights()]
    reptile(model, x[y < 5], y[y < 5], n_way=3, k_shot=2, meta_iterations=5)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    rng = np.random.default_rng(3)
    xs, ys, xq, yq, _ = sample_episode(x[y >= 5], y[y >= 5], 3, 5, 5, rng)
    adapted = adapt_on_support(model, xs, ys, steps=30, learning_rate=0.05)
    assert np.mean(np.argmax(adapted(xq), -1) == yq) >= 0.8
    with pytest.raises(ValueError, match="n_way"):
        reptile(model, x, y, n_way=5)


@pytest.fixture(scope="module")
def vgg_preset(tmp_path_factory):
    """A KerasHub preset directory (VGG backbone + 1/255 image converter)."""
    import keras_hub

    from keras_transfer.pretrain import make_vgg_backbone

    keras.utils.set_random_seed(0)
    preset = str(tmp_path_factory.mktemp("fewshot_preset"))
    make_vgg_backbone((4, 8)).save_to_preset(preset)
    keras_hub.layers.ImageConverter(scale=1.0 / 255.0).save_to_preset(preset)
    return f"keras_hub:{preset}"


def test_protonet_takes_a_keras_hub_spec_like_the_builders(vgg_preset):
    from keras_transfer.backbones import load_backbone
    from keras_transfer.builders import inputs_and_features

    x = np.random.default_rng(0).uniform(0, 255, (12, 16, 16, 3)).astype("float32")
    y = np.arange(12) % 3
    proto = ProtoNetClassifier(vgg_preset, input_shape=(16, 16, 3))
    # The builders' route: the preset's converter, the backbone, then avg pooling.
    inputs, features = inputs_and_features(load_backbone(vgg_preset), (16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    expected = keras.Model(inputs, pooled).predict(x, verbose=0)
    np.testing.assert_allclose(proto.embed(x), expected, rtol=1e-5, atol=1e-6)
    unscaled = keras.Model(inputs, pooled).predict(x / 255.0, verbose=0)
    assert not np.allclose(expected, unscaled)  # the converter runs (x / 255)

    assert proto.fit_support(x, y).predict(x).shape == (12,)
    before = [w.copy() for w in proto.encoder.get_weights()]
    proto.fit_episodes(x, y, n_way=3, k_shot=2, n_query=2, episodes=2)
    after = proto.encoder.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after))

    loaded = ProtoNetClassifier(load_backbone(vgg_preset), input_shape=(16, 16, 3))
    np.testing.assert_allclose(loaded.embed(x), expected, rtol=1e-5, atol=1e-6)


def test_protonet_spec_string_takes_backbone_kwargs_and_refuses_them_for_models():
    proto = ProtoNetClassifier(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    assert proto.encoder.output_shape == (None, 576)
    with pytest.raises(
        ValueError, match=r"Received: backbone='sequential.*\['weights'\]"
    ):
        ProtoNetClassifier(_encoder(), weights=None)
    with pytest.raises(ValueError, match=r"\['input_shape'\]"):
        ProtoNetClassifier(_encoder(), input_shape=(8,))
    with pytest.raises(ValueError, match="Received: backbone=3"):
        ProtoNetClassifier(3)
    with pytest.raises(ValueError, match="Unknown|scheme"):
        ProtoNetClassifier("nope:thing")

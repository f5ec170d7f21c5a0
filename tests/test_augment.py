"""Tests of keras_transfer.augment."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer.augment import (
    AugmentationConfig,
    LabelAccuracy,
    SmoothedCrossentropy,
    build_augmentation,
    is_augmentation_layer,
    mix_dataset,
    strip_augmentation,
)


def _images(n=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


def _functional(aug):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(aug(inputs))
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, "softmax")(x))


def _all_layers(model):
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


def test_build_augmentation_from_options_and_config():
    assert build_augmentation() is None
    aug = build_augmentation(
        AugmentationConfig(flip="horizontal", randaugment=True), rotation=0.1, seed=1
    )
    names = [type(layer).__name__ for layer in aug.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandAugment"]
    assert aug.name == "augmentation" and is_augmentation_layer(aug)
    x = _images()
    np.testing.assert_array_equal(aug(x, training=False), x)  # identity at inference
    assert not np.allclose(aug(x, training=True), x)
    with pytest.raises(ValueError, match="flip"):
        build_augmentation(flip="diagonal")
    with pytest.raises(ValueError, match="label_smoothing"):
        AugmentationConfig(label_smoothing=1.0)


def test_augmentation_absent_from_inference_and_export(tmp_path):
    model = _functional(build_augmentation(flip="horizontal", randaugment=True))
    model.compile(optimizer="adam", loss=SmoothedCrossentropy(0.1))
    x = _images()
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    stripped = strip_augmentation(model)
    assert not any(is_augmentation_layer(layer) for layer in _all_layers(stripped))
    assert any(is_augmentation_layer(layer) for layer in _all_layers(model))
    np.testing.assert_allclose(
        stripped.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    # Shared weights: training `model` further changes `stripped` too.
    assert stripped.layers[-1].kernel is model.layers[-1].kernel
    stripped.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert not any(is_augmentation_layer(layer) for layer in _all_layers(reloaded))
    stripped.export(tmp_path / "saved", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = loaded.serve(x)
    np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-5)
    seq = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.RandomFlip(), keras.layers.Flatten()]
    )
    assert [type(layer).__name__ for layer in strip_augmentation(seq).layers] == [
        "Flatten"
    ]
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert strip_augmentation(plain) is plain


def test_mix_dataset_mixes_images_and_labels():
    x, y = _images(16), np.arange(16) % 4
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    assert mix_dataset(ds, 4) is ds
    for kwargs in (
        {"mixup_alpha": 0.4},
        {"cutmix": 1.0},
        {"mixup_alpha": 0.4, "cutmix": 1.0},
    ):
        images, labels = next(iter(mix_dataset(ds, 4, seed=3, **kwargs)))
        labels = labels.numpy()
        assert labels.shape == (8, 4)
        np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)
        assert images.shape == (8, 16, 16, 3)
    images, labels = next(iter(mix_dataset(ds, 4, mixup_alpha=0.4, seed=3)))
    assert (labels.numpy().max(-1) < 1).any()  # some labels are really mixed
    assert not np.allclose(images, x[:8])


def test_an_unknown_option_is_named_with_the_known_ones():
    from keras_transfer.augment import build_augmentation

    with pytest.raises(
        ValueError,
        match=r"Unknown augmentation option\(s\) \['flipp'\]"
        r"\. Expected some of \['flip', 'rotation'",
    ):
        build_augmentation({"flipp": "horizontal"})


def test_mix_dataset_refuses_what_it_cannot_mix():
    x, y = _images(16), np.arange(16) % 4
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(
        ValueError, match=r"batched tf.data.Dataset.*dataset.batch\(32\)"
    ):
        mix_dataset(ds, 4, mixup_alpha=0.2)
    with pytest.raises(ValueError, match="from_tensor_slices"):
        mix_dataset((x, y), 4, mixup_alpha=0.2)
    as_dict = tf.data.Dataset.from_tensor_slices({"images": x, "labels": y}).batch(8)
    with pytest.raises(ValueError, match=r"dicts: map them to \(images, labels\)"):
        mix_dataset(as_dict, 4, mixup_alpha=0.2)
    with pytest.raises(ValueError, match="mixup_alpha >= 0"):
        mix_dataset(ds.batch(8), 4, mixup_alpha=-1)
    # ids past num_classes were all-zero targets; now the batch fails, by name
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels in \[0, 3\)"):
        next(iter(mix_dataset(ds.batch(8), 3, mixup_alpha=0.2)))


def test_smoothed_crossentropy_and_accuracy_take_both_label_kinds():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "float32")
    y = np.array([0, 1])
    onehot = np.eye(3, dtype="float32")[y]
    ref = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(onehot, p)
    loss = SmoothedCrossentropy(label_smoothing=0.1)
    np.testing.assert_allclose(loss(y, p), ref, rtol=1e-6)
    np.testing.assert_allclose(loss(onehot, p), ref, rtol=1e-6)
    np.testing.assert_allclose(
        SmoothedCrossentropy()(y, p),
        keras.losses.SparseCategoricalCrossentropy()(y, p),
        rtol=1e-6,
    )
    clone = SmoothedCrossentropy.from_config(loss.get_config())
    assert clone.label_smoothing == 0.1
    for labels in (y, onehot, y[:, None]):
        acc = LabelAccuracy()
        acc.update_state(labels, p)
        assert float(acc.result()) == 0.5


def test_build_classifier_augmentation_option():
    from keras_transfer.builders import build_classifier, recompile

    backbone = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu")]
    )
    model = build_classifier(
        backbone,
        3,
        input_shape=(16, 16, 3),
        augmentation={"flip": "horizontal", "mixup_alpha": 0.2, "weight_decay": 1e-4},
    )
    assert any(is_augmentation_layer(layer) for layer in model.layers)
    assert isinstance(model.loss, SmoothedCrossentropy)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    x, y = _images(16), np.arange(16) % 3
    ds = mix_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(8), 3, mixup_alpha=0.2
    )
    head = model.get_layer("predictions").kernel
    before = np.array(head.numpy(), copy=True)
    hist = model.fit(ds, epochs=1, verbose=0)
    # Soft (MixUp) labels train through the smoothed loss: finite, weights move,
    # and LabelAccuracy counts whole examples (2 batches of 8).
    assert np.isfinite(hist.history["loss"][0]) and hist.history["loss"][0] > 0
    assert not np.allclose(before, head.numpy())
    assert hist.history["accuracy"][0] * 16 == pytest.approx(
        round(hist.history["accuracy"][0] * 16), abs=1e-4
    )
    model.evaluate(x, y, verbose=0)  # integer labels work with the same compile
    recompile(model, learning_rate=1e-4)
    assert isinstance(model.loss, SmoothedCrossentropy)
    stripped = strip_augmentation(model)
    assert not any(is_augmentation_layer(layer) for layer in _all_layers(stripped))
    np.testing.assert_allclose(
        stripped.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    plain = build_classifier(backbone, 3, input_shape=(16, 16, 3), label_smoothing=0.1)
    assert plain.loss.label_smoothing == 0.1

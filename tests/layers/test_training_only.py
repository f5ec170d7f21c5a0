"""The one registry of training-only layer classes (keras_transfer.layers.training_only)."""

from __future__ import annotations

import numpy as np
import pytest
from layers.training_only_cases import BUILT_IN, make

from keras_transfer._backend import keras
from keras_transfer.layers import GradientReversal
from keras_transfer.layers import training_only as registry


def test_every_random_keras_layer_is_registered():
    """Fails when a Keras release adds a Random* layer the registry does not know."""
    random_layers = {
        name
        for name in dir(keras.layers)
        if name.startswith("Random") and isinstance(getattr(keras.layers, name), type)
    }
    registered = {cls.__name__ for cls in registry.training_only_layer_types()}
    assert random_layers, "keras.layers has no Random* layers: the check is void"
    assert random_layers - registered == set()


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda cls: cls.__name__)
def test_built_in_classes_are_identity_at_inference(cls):
    """Export replaces them with Identity: that is only right if they are one."""
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    y = np.asarray(make(cls)(x, training=False))
    np.testing.assert_array_equal(y, x)


def test_registry_holds_classes_and_their_subclasses():
    class MyFlip(keras.layers.RandomFlip):
        pass

    assert registry.is_training_only(GradientReversal())
    assert registry.is_training_only(MyFlip())
    assert not registry.is_training_only(keras.layers.Dropout(0.5))
    assert not registry.is_training_only(keras.layers.Rescaling(0.5))


def test_register_a_class_or_a_registered_name():
    class Wobble(keras.layers.Layer):
        def call(self, x, training=None):
            return x * 1.1 if training else x

    assert not registry.is_training_only(Wobble())
    assert registry.register_training_only_layer(Wobble) is Wobble
    assert registry.is_training_only(Wobble())
    assert Wobble in registry.training_only_layer_types()
    registry.register_training_only_layer(Wobble)  # twice: registered once
    assert registry.training_only_layer_types().count(Wobble) == 1
    # A name resolves to its class (keras.layers, or a serializable registration).
    assert registry.register_training_only_layer("GaussianNoise") is (
        keras.layers.GaussianNoise
    )
    name = keras.saving.get_registered_name(GradientReversal)
    assert registry.register_training_only_layer(name) is GradientReversal


def test_unknown_training_only_layer_fails_loudly():
    with pytest.raises(ValueError, match="RandomWobbel.*names no such class"):
        registry.register_training_only_layer("RandomWobbel")
    with pytest.raises(TypeError, match="subclass of keras.layers.Layer"):
        registry.register_training_only_layer(int)
    with pytest.raises(TypeError, match="Received: layer_class=3"):
        registry.register_training_only_layer(3)


def test_a_sequential_of_training_only_layers_is_one_block():
    block = keras.Sequential([keras.layers.RandomFlip(), keras.layers.GaussianNoise(1)])
    mixed = keras.Sequential([keras.layers.RandomFlip(), keras.layers.Rescaling(2.0)])
    assert registry.is_training_only(block)
    assert not registry.is_training_only(mixed)
    assert not registry.is_training_only(keras.Sequential())


def test_augment_uses_the_same_classes():
    from keras_transfer import augment

    assert augment.AUGMENTATION_LAYER_TYPES is registry.AUGMENTATION_LAYER_TYPES
    stack = augment.build_augmentation(flip="horizontal", randaugment=True)
    assert registry.is_training_only(stack)

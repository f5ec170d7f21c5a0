"""The one registry of training-only layer classes (left out of every export).

A layer is *training-only* when it only acts while training and is the identity at
inference: Keras' random augmentation layers, its noise layers, and
`GradientReversal` (identity forward, reversed gradient backward). Export swaps them
for ``Identity`` (``keras_transfer.export``); ``keras_transfer.augment`` builds its
augmentation stacks from `AUGMENTATION_LAYER_TYPES`. The registry holds classes, so a
subclass of a registered layer is training-only too; there is no name matching.

Every built-in class here is checked by ``tests/layers/test_training_only.py`` to be
the identity with ``training=False`` in the installed Keras, and every ``Random*``
layer Keras ships must be registered, so a Keras release that adds one fails that
test instead of shipping it unnoticed.

Examples:
```python
from keras_transfer._backend import keras
from keras_transfer.layers.training_only import (
    is_training_only,
    register_training_only_layer,
)


@register_training_only_layer
class Jitter(keras.layers.Layer):
    def call(self, x, training=None):
        return x + keras.random.normal(keras.ops.shape(x)) if training else x


assert is_training_only(Jitter()) and is_training_only(keras.layers.RandomFlip())
assert not is_training_only(keras.layers.Dropout(0.5))  # kept: part of the model
```
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.layers.gradient_reversal import GradientReversal

__all__ = [
    "AUGMENTATION_LAYER_TYPES",
    "NOISE_LAYER_TYPES",
    "is_training_only",
    "register_training_only_layer",
    "training_only_layer_types",
]


def _keras_layers(*names: str) -> tuple[type, ...]:
    """The named ``keras.layers`` classes this Keras version has."""
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


# Random image augmentation: identity with training=False (Keras 3.15 checked).
AUGMENTATION_LAYER_TYPES: tuple[type, ...] = _keras_layers(
    "AugMix",
    "CutMix",
    "MixUp",
    "RandAugment",
    "RandomBrightness",
    "RandomColorDegeneration",
    "RandomColorJitter",
    "RandomContrast",
    "RandomCrop",
    "RandomElasticTransform",
    "RandomErasing",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomHue",
    "RandomInvert",
    "RandomPerspective",
    "RandomPosterization",
    "RandomRotation",
    "RandomSaturation",
    "RandomSharpness",
    "RandomShear",
    "RandomTranslation",
    "RandomZoom",
    "Solarization",
)

# Regularising noise. Plain Dropout is left out on purpose: it is part of nearly
# every head, is the identity at inference anyway, and listing it in every
# export's stripped_layers would hide the layers that matter.
NOISE_LAYER_TYPES: tuple[type, ...] = _keras_layers(
    "AlphaDropout", "GaussianDropout", "GaussianNoise"
)

_REGISTRY: list[type] = [
    *AUGMENTATION_LAYER_TYPES,
    *NOISE_LAYER_TYPES,
    GradientReversal,
]


def _resolve(layer_class: Any) -> type:
    """The layer class named by ``layer_class`` (a class, or a registered name)."""
    if isinstance(layer_class, str):
        found = getattr(keras.layers, layer_class, None)
        if found is None:
            found = keras.saving.get_registered_object(layer_class)
        if found is None:
            raise ValueError(
                "Expected layer_class to be a layer class, or the name of a "
                "keras.layers class or of a class registered with "
                "@keras.saving.register_keras_serializable (e.g. "
                "'keras_transfer>GradientReversal'). Received: "
                f"layer_class={layer_class!r}, which names no such class. Pass the "
                "class itself."
            )
        layer_class = found
    if not (
        isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)
    ):
        raise TypeError(
            "Expected layer_class to be a subclass of keras.layers.Layer. Received: "
            f"layer_class={layer_class!r}"
        )
    return layer_class


def register_training_only_layer(layer_class: type | str) -> type:
    """Declares a layer class training-only, so export leaves it out.

    Usable as a class decorator. Subclasses of a registered class are training-only
    too. Register only layers that are the identity with ``training=False``: export
    replaces them with ``Identity``.

    Args:
        layer_class: type or str. A ``keras.layers.Layer`` subclass, or the name of
            a ``keras.layers`` class or of a registered serializable class
            (``"package>Name"``).

    Returns:
        The class, unchanged (so the function works as a decorator).

    Raises:
        TypeError: ``layer_class`` is not a Layer subclass.
        ValueError: ``layer_class`` is a name that resolves to no class.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.layers.training_only import (
        is_training_only,
        register_training_only_layer,
    )


    class Shake(keras.layers.Layer):
        def call(self, x, training=None):
            return x * 1.1 if training else x


    register_training_only_layer(Shake)
    assert is_training_only(Shake())
    ```
    """
    layer_class = _resolve(layer_class)
    if layer_class not in _REGISTRY:
        _REGISTRY.append(layer_class)
    return layer_class


def training_only_layer_types() -> tuple[type, ...]:
    """Returns every registered training-only class (built-in and user-registered).

    Examples:
    ```python
    from keras_transfer.layers import GradientReversal
    from keras_transfer.layers.training_only import training_only_layer_types

    assert GradientReversal in training_only_layer_types()
    ```
    """
    return tuple(_REGISTRY)


def is_training_only(layer: Any) -> bool:
    """Returns whether ``layer`` only acts while training.

    True for an instance of a registered class (or of a subclass), and for a
    non-empty ``keras.Sequential`` made only of such layers (an augmentation stack,
    e.g. what ``keras_transfer.augment.build_augmentation`` returns).

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.layers.training_only import is_training_only

    assert is_training_only(keras.layers.GaussianNoise(0.1))
    assert not is_training_only(keras.layers.Rescaling(1 / 255))
    ```
    """
    if isinstance(layer, tuple(_REGISTRY)):
        return True
    if isinstance(layer, keras.Sequential):
        inner = layer.layers
        return bool(inner) and all(is_training_only(sub) for sub in inner)
    return False

"""One instance of every built-in training-only class (shared by layer and export tests)."""

from __future__ import annotations

from keras_transfer._backend import keras
from keras_transfer.layers import training_only as registry

# Constructor arguments for the registered Keras classes that need some.
_ARGS = {
    "RandomBrightness": (0.2,),
    "RandomColorDegeneration": (0.2,),
    "RandomContrast": (0.2,),
    "RandomCrop": (8, 8),
    "RandomHue": (0.2,),
    "RandomPosterization": (4,),
    "RandomRotation": (0.2,),
    "RandomSaturation": (0.2,),
    "RandomSharpness": (0.2,),
    "RandomTranslation": (0.2, 0.2),
    "RandomZoom": (0.2,),
    "AlphaDropout": (0.3,),
    "GaussianDropout": (0.3,),
    "GaussianNoise": (0.3,),
}
BUILT_IN = registry.AUGMENTATION_LAYER_TYPES + registry.NOISE_LAYER_TYPES


def make(cls: type) -> keras.layers.Layer:
    """An instance of ``cls`` for 8x8x3 images."""
    return cls(*_ARGS.get(cls.__name__, ()))

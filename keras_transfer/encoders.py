"""`make_encoder`: a backbone (model, layer, spec or LoadedBackbone) -> a feature model.

An *encoder* (docs/vocabulary.md) is what a model makes from its backbone: raw inputs
-> the backbone's preprocessor -> the backbone -> pooling, with a 2-D output. Domain
adaptation (`DomainAdaptationModel.encoder`) and few-shot learning
(`ProtoNetClassifier.encoder`) both make theirs here, so both accept the same
backbones as the builders; it lives among the building blocks (next to the loaders,
the trainable policy and the pooling it uses) so that neither capability imports the
other.
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones import (
    LoadedBackbone,
    load_backbone,
    warn_if_frozen_batchnorm_random,
)
from keras_transfer.distribute.strategy import into_scope
from keras_transfer.freezing import set_trainable
from keras_transfer.heads import POOLINGS, pool_features
from keras_transfer.normalization import (
    check_batchnorm_momentum,
    set_batchnorm_momentum,
)

__all__ = ["make_encoder"]


def make_encoder(
    backbone: Any,
    *,
    input_shape: tuple | None = None,
    unfreeze_depth: int | str | None = None,
    train_batchnorm: bool | str = "auto",
    include_preprocessing: bool = True,
    pooling: str = "avg",
    batchnorm_momentum: float | str | None = "auto",
    **backbone_kwargs: Any,
) -> keras.Model:
    """Returns a functional model mapping raw inputs to a ``(batch, features)`` tensor.

    Args:
        backbone: keras.Model, keras.layers.Layer, `LoadedBackbone`, or a spec string
            for `keras_transfer.backbones.load_backbone` (e.g.
            ``"keras_hub:<preset dir>"``, ``"keras_applications:MobileNetV3Small"``).
        input_shape: tuple or None. Shape of one input (no batch axis); needed when
            the backbone has no defined input. Defaults to None.
        unfreeze_depth: int, "all", 0 or None. Trainable policy passed to
            `keras_transfer.freezing.set_trainable`; None leaves it as it is.
            Defaults to None.
        train_batchnorm: bool or `"auto"`. Let BatchNormalization train when
            unfrozen: `"auto"` trains those whose statistics have never been trained (a
            backbone without pretrained weights) and keeps pretrained ones frozen (the
            keras.io rule), as `set_trainable`. Defaults to `"auto"`.
        include_preprocessing: bool. Put a `LoadedBackbone`'s preprocessor in front.
            Defaults to True.
        pooling: str. How 3-D/4-D backbone outputs become 2-D: `"avg"`, `"max"`,
            `"flatten"` or `"auto"` (`keras_transfer.heads.pool_features`).
            Defaults to `"avg"`.
        batchnorm_momentum: `"auto"`, float in [0, 1) or None. `"auto"`: the
            backbone's BatchNormalization layers that have never been trained use
            momentum 0.9 instead of a higher one
            (`keras_transfer.normalization.set_batchnorm_momentum`); a float sets
            every one; None keeps theirs (`DomainAdaptationModel` passes None:
            `adapt` sets the momentum while it trains and gives it back).
            Defaults to `"auto"`.
        **backbone_kwargs: Arguments of `load_backbone` for a spec string (e.g.
            ``weights=None``).

    Returns:
        A functional `keras.Model` whose output is 2-D (feature maps are pooled
        by ``pooling``). A functional backbone that already outputs
        ``(batch, features)`` is returned as it is.

    Raises:
        ValueError: If the input shape cannot be determined, or for backbone
            arguments with a backbone that is not a spec string.

    Examples:
    ```python
    from keras_transfer._backend import keras
    from keras_transfer.encoders import make_encoder

    encoder = make_encoder(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    assert encoder.output_shape == (None, 576)
    conv = keras.Sequential([keras.layers.Conv2D(4, 3)])  # no inputs of its own
    assert make_encoder(conv, input_shape=(8, 8, 3)).output_shape == (None, 4)
    ```
    """
    if pooling not in POOLINGS:
        raise ValueError(
            f"Expected pooling to be one of {POOLINGS}. Received: pooling={pooling!r}"
        )
    check_batchnorm_momentum(batchnorm_momentum)
    preprocessor = None
    label = backbone if isinstance(backbone, str) else None
    if isinstance(backbone, str):
        backbone = load_backbone(backbone, **backbone_kwargs)
    elif backbone_kwargs:
        raise ValueError(
            "Backbone arguments are used only when backbone is a spec string. "
            f"Received: backbone={backbone!r} with {sorted(backbone_kwargs)}"
        )
    if isinstance(backbone, LoadedBackbone):
        warn_if_frozen_batchnorm_random(backbone, unfreeze_depth, train_batchnorm)
        label = backbone.spec or label
        preprocessor = backbone.preprocessor if include_preprocessing else None
        input_shape = input_shape or backbone.input_shape
        backbone = backbone.model
    if not isinstance(backbone, keras.layers.Layer):
        raise ValueError(
            "Expected backbone to be a keras Model/Layer, a LoadedBackbone or a "
            f"backbone spec string. Received: backbone={backbone!r}"
        )
    backbone = into_scope(backbone)  # built outside a strategy in use: copied into it
    set_batchnorm_momentum(
        backbone,
        batchnorm_momentum,
        label=f"backbone {label or backbone.name!r}",
        verbose=True,
    )
    if unfreeze_depth is not None:
        # The shared policy; nothing to recompile: the encoder model is built below.
        set_trainable(
            backbone, unfreeze_depth, train_batchnorm=train_batchnorm, recompile=False
        )
    is_functional = isinstance(backbone, keras.Model) and _has_inputs(backbone)
    if is_functional and preprocessor is None and input_shape is None:
        if len(backbone.outputs) == 1 and len(backbone.outputs[0].shape) == 2:
            return backbone
        input_shape = tuple(backbone.inputs[0].shape[1:])
    if input_shape is None:
        raise ValueError(
            "Cannot tell the encoder's input shape: pass input_shape=(h, w, c) (or the "
            f"shape of one example). Received: backbone={backbone.name!r} with no "
            "inputs"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = preprocessor(inputs) if preprocessor is not None else inputs
    features = pool_features(backbone(x), pooling)
    return keras.Model(inputs, features, name="encoder")


def _has_inputs(model: keras.Model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False

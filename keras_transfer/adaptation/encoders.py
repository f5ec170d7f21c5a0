"""Turns a backbone (model, layer, spec or LoadedBackbone) into a feature encoder."""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.freezing import set_trainable
from keras_transfer.heads import pool_features


def make_encoder(
    backbone: Any,
    *,
    input_shape: tuple | None = None,
    unfreeze_depth: int | str | None = None,
    train_batchnorm: bool = False,
    include_preprocessing: bool = True,
) -> keras.Model:
    """Returns a functional model mapping raw inputs to a ``(batch, features)`` tensor.

    Args:
        backbone: keras.Model, keras.layers.Layer, `LoadedBackbone`, or a spec string
            for `keras_transfer.backbones.load_backbone`.
        input_shape: tuple or None. Shape of one input (no batch axis); needed when
            the backbone has no defined input. Defaults to None.
        unfreeze_depth: int, "all", 0 or None. Trainable policy passed to
            `keras_transfer.freezing.set_trainable`; None leaves it as it is.
            Defaults to None.
        train_batchnorm: bool. Whether unfrozen BatchNorm layers train.
            Defaults to False.
        include_preprocessing: bool. Put a `LoadedBackbone`'s preprocessor in front.
            Defaults to True.

    Returns:
        A functional `keras.Model` whose output is 2-D.

    Raises:
        ValueError: If the input shape cannot be determined.
    """
    preprocessor = None
    if isinstance(backbone, str):
        from keras_transfer.backbones import load_backbone

        backbone = load_backbone(backbone)
    if hasattr(backbone, "model") and hasattr(backbone, "modality"):  # LoadedBackbone
        preprocessor = backbone.preprocessor if include_preprocessing else None
        input_shape = input_shape or getattr(backbone, "input_shape", None)
        backbone = backbone.model
    if not isinstance(backbone, keras.layers.Layer):
        raise ValueError(
            "Expected encoder to be a keras Model/Layer, a LoadedBackbone or a "
            f"backbone spec string. Received: encoder={backbone!r}"
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
            f"shape of one example). Received: encoder={backbone.name!r} with no inputs"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = preprocessor(inputs) if preprocessor is not None else inputs
    features = pool_features(backbone(x))
    return keras.Model(inputs, features, name="encoder")


def _has_inputs(model: keras.Model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False

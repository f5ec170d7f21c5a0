"""KerasHub presets (image and text backbones; local dirs in Keras, HF or timm format)."""

from __future__ import annotations

import os
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones.base import LoadedBackbone


def _is_text_backbone(backbone: Any) -> bool:
    inputs = getattr(backbone, "input", None)
    return isinstance(inputs, dict) and "token_ids" in inputs


def _not_found(preset: str, error: Exception) -> ValueError:
    local = os.path.isdir(preset)
    hint = (
        f"The directory exists but is not a KerasHub preset (no usable config.json): "
        f"{error}"
        if local
        else (
            "It is neither a local preset directory nor a preset that could be "
            f"downloaded ({type(error).__name__}: {error}). If this machine is offline, "
            "pass a local preset directory (written by backbone.save_to_preset(dir), or "
            "a Hugging Face / timm checkpoint directory): 'keras_hub:/path/to/preset'."
        )
    )
    return ValueError(f"Could not load the KerasHub preset {preset!r}. {hint}")


def load_keras_hub(
    rest: str,
    *,
    load_weights: bool = True,
    preprocessor: bool = True,
    sequence_length: int | None = None,
    **kwargs: Any,
) -> LoadedBackbone:
    """Loads `keras_hub.models.Backbone.from_preset(rest)` and its preprocessor.

    Args:
        rest: str. A preset name (e.g. `"resnet_18_imagenet"`, `"bert_tiny_en_uncased"`)
            or a local preset directory.
        load_weights: bool. Load the preset's weights. Defaults to True.
        preprocessor: bool. Also load the matching preprocessor (an `ImageConverter`
            for images, a `TextClassifierPreprocessor` for text) when the preset has
            one. Defaults to True.
        sequence_length: int or None. Text preprocessors only.
        **kwargs: Passed to `Backbone.from_preset`.

    Returns:
        A `LoadedBackbone`.
    """
    import keras_hub

    try:
        backbone = keras_hub.models.Backbone.from_preset(
            rest, load_weights=load_weights, **kwargs
        )
    except (FileNotFoundError, ValueError, OSError) as e:
        raise _not_found(rest, e) from e
    except Exception as e:  # network errors from the download path
        if "ConnectionError" in type(e).__name__ or "HTTP" in type(e).__name__:
            raise _not_found(rest, e) from e
        raise
    text = _is_text_backbone(backbone)
    prep = None
    if preprocessor:
        prep = _load_preprocessor(keras_hub, rest, text, sequence_length)
    input_shape = None
    if not text:
        shape = backbone.input_shape
        input_shape = tuple(shape[1:]) if shape is not None else None
    return LoadedBackbone(
        model=backbone,
        preprocessor=prep,
        modality="text" if text else "image",
        spec=f"keras_hub:{rest}",
        input_shape=input_shape,
        metadata={"preset": rest, "class_name": type(backbone).__name__},
        pretrained=bool(load_weights),
    )


def _load_preprocessor(
    keras_hub: Any, preset: str, text: bool, sequence_length: int | None
) -> keras.layers.Layer | None:
    try:
        if text:
            kwargs = {"sequence_length": sequence_length} if sequence_length else {}
            return keras_hub.models.TextClassifierPreprocessor.from_preset(
                preset, **kwargs
            )
        return keras_hub.layers.ImageConverter.from_preset(preset)
    except (FileNotFoundError, ValueError, OSError):
        return None

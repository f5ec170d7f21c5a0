"""Backbone loading: one door (`load_backbone`) and one loader per source."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from keras_transfer._backend import keras
from keras_transfer.backbones.applications import (
    ApplicationPreprocessing,
    load_keras_application,
)
from keras_transfer.backbones.base import (
    LoadedBackbone,
    logger,
    warn_if_frozen_batchnorm_random,
    warn_if_frozen_random,
)
from keras_transfer.backbones.headless import feature_extractor, looks_like_classifier
from keras_transfer.backbones.kerashub import load_keras_hub
from keras_transfer.backbones.minilm import register_minilm
from keras_transfer.backbones.registry import (
    get_loader,
    list_backbone_aliases,
    list_backbone_schemes,
    register_backbone_alias,
    register_backbone_loader,
    resolve,
)
from keras_transfer.backbones.tfhub import HubLayer, load_saved_model, load_tfhub
from keras_transfer.distribute.strategy import into_scope

__all__ = [
    "ApplicationPreprocessing",
    "HubLayer",
    "LoadedBackbone",
    "feature_extractor",
    "find_backbone",
    "list_backbone_aliases",
    "list_backbone_schemes",
    "load_backbone",
    "looks_like_classifier",
    "register_backbone_alias",
    "register_backbone_loader",
    "validate_features",
    "warn_if_frozen_batchnorm_random",
    "warn_if_frozen_random",
]

register_backbone_loader(
    "keras_hub",
    load_keras_hub,
    description="KerasHub preset name or local preset dir (Keras, HF or timm format)",
    overwrite=True,
)
register_backbone_loader(
    "tfhub",
    load_tfhub,
    description="TF-Hub handle or local module dir, wrapped as a trainable HubLayer",
    overwrite=True,
)
register_backbone_loader(
    "saved_model",
    load_saved_model,
    description="SavedModel directory (tf.saved_model.save / model.export)",
    overwrite=True,
)
register_backbone_loader(
    "keras_applications",
    load_keras_application,
    description="keras.applications model name, e.g. MobileNetV3Small (headless)",
    overwrite=True,
)


def validate_features(model: Any) -> None:
    """Raises if `model` does not look like a feature extractor.

    Accepted outputs: one float tensor of rank 2-4, or a dict holding
    `"pooled_output"`/`"sequence_output"` (KerasHub text backbones). A model whose last
    layer ends in softmax/sigmoid is a classifier, not a backbone.

    Args:
        model: keras.Model or keras.layers.Layer.

    Raises:
        ValueError: the output is not a feature tensor.
    """
    if not isinstance(model, keras.Model):
        return  # A bare layer: its output is checked when the builder calls it.
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if not outputs:
        return  # Subclassed model, not yet called: checked when the builder calls it.
    output = outputs[0] if len(outputs) == 1 else outputs
    if isinstance(getattr(model, "output", None), dict):
        output = model.output
    if isinstance(output, dict):
        if not {"pooled_output", "sequence_output"} & set(output):
            raise ValueError(
                "Expected a backbone whose dict output has 'pooled_output' or "
                f"'sequence_output'. Received outputs: {sorted(output)}"
            )
        return
    if isinstance(output, list | tuple):
        raise ValueError(
            f"Expected a backbone with one feature output. Received {len(output)} "
            "outputs; wrap it in a keras.Model that returns the feature tensor."
        )
    rank = len(output.shape)
    if rank not in (2, 3, 4) or "float" not in str(output.dtype):
        raise ValueError(
            "Expected a backbone that outputs a float feature tensor of rank 2 "
            "(vector), 3 (sequence) or 4 (feature map). Received output shape "
            f"{tuple(output.shape)} with dtype {output.dtype}."
        )
    if looks_like_classifier(model):
        last = model.layers[-1]
        raise ValueError(
            f"The model's last layer {last.name!r} applies "
            f"{last.activation.__name__}: it looks like a classifier, not a feature "
            "extractor. Pass the model without its top (e.g. include_top=False), a "
            "sub-model ending at the features, or "
            "keras_transfer.feature_extractor(model) (the features its head "
            "classifies)."
        )


def load_backbone(spec: Any, **kwargs: Any) -> LoadedBackbone:
    """Loads a pretrained backbone that outputs features, plus its preprocessing.

    Args:
        spec: str, keras.Model, keras.layers.Layer or LoadedBackbone. One of:
            - `"keras_hub:<preset name or local dir>"`: `keras_hub.models.Backbone.
              from_preset`, with the preset's `ImageConverter` or
              `TextClassifierPreprocessor` when it has one.
            - `"tfhub:<handle or local dir>"`: a TF-Hub module as a trainable Keras 3
              `HubLayer` (pass `input_shape=` and `trainable=`).
            - `"saved_model:<dir>"`: a SavedModel directory, likewise.
            - `"keras_applications:<Name>"`: e.g. `"MobileNetV3Small"`, with
              `weights=`, `input_shape=` and the matching `preprocess_input`.
            - a registered alias (e.g. `"minilm"`), or any scheme added with
              `register_backbone_loader`.
            - a path (no scheme): a `.keras` file (a classifier's head is
              removed, `feature_extractor`: the features it classifies, logged),
              a SavedModel directory (`saved_model.pb`: as `"saved_model:"`) or a
              KerasHub preset directory (`config.json` and `metadata.json`: as
              `"keras_hub:"`).
            - a `keras.Model` / `keras.layers.Layer`, passed through.
        **kwargs: Passed to the scheme's loader.

    Returns:
        A `LoadedBackbone` (`.model`, `.preprocessor`, `.modality`, `.spec`).

    Raises:
        ValueError: unknown scheme (the accepted ones are listed), a preset/handle
            that cannot be found or downloaded, or a model that does not output
            features.

    Examples:
    ```python
    from keras_transfer import load_backbone
    bb = load_backbone(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    assert bb.modality == "image" and bb.input_shape == (32, 32, 3)
    ```
    """
    if isinstance(spec, LoadedBackbone):
        model = into_scope(spec.model)
        return spec if model is spec.model else dataclasses.replace(spec, model=model)
    if isinstance(spec, keras.layers.Layer):
        spec = into_scope(spec)
        if kwargs:
            raise ValueError(
                "Keyword arguments are only used with a spec string; a keras model "
                f"passes through as it is. Received: {sorted(kwargs)}"
            )
        validate_features(spec)
        input_shape = None
        if isinstance(spec, keras.Model):
            try:
                input_shape = tuple(spec.input_shape[1:])
            except (AttributeError, ValueError, TypeError):
                input_shape = None
        return LoadedBackbone(
            model=spec,
            modality="image" if input_shape and len(input_shape) == 3 else "features",
            spec=type(spec).__name__,
            input_shape=input_shape,
        )
    if not isinstance(spec, str):
        raise ValueError(
            "Expected spec to be a string like 'keras_hub:<preset>', a keras.Model, a "
            f"keras.layers.Layer or a LoadedBackbone. Received: {type(spec).__name__}"
        )
    from_path = _load_path(spec, kwargs)
    if from_path is not None:
        return from_path
    scheme, rest = resolve(spec)
    loaded = get_loader(scheme)(rest, **kwargs)
    if not isinstance(loaded, LoadedBackbone):
        raise ValueError(
            f"The loader of scheme {scheme!r} returned {type(loaded).__name__}; "
            "expected a LoadedBackbone."
        )
    validate_features(loaded.model)
    return loaded


register_minilm()

#: Files that make a directory a KerasHub preset.
PRESET_FILES = ("config.json", "metadata.json")


def _load_path(spec: str, kwargs: dict) -> LoadedBackbone | None:
    """A spec without a known scheme that names an existing path; else None."""
    prefix, sep, _ = spec.partition(":")
    if (sep and prefix in list_backbone_schemes()) or spec in list_backbone_aliases():
        return None
    path = Path(spec).expanduser()
    if not path.exists():
        if spec.endswith((".keras", ".h5")) or "/" in spec:
            raise ValueError(
                f"No file or directory at {spec!r}. Expected a .keras file, a "
                "SavedModel directory, a KerasHub preset directory or a spec "
                "'<scheme>:<name>' (schemes: "
                f"{', '.join(sorted(list_backbone_schemes()))})."
            )
        return None
    if path.is_file() and path.suffix == ".keras":
        if kwargs:
            raise ValueError(
                "Keyword arguments are not used with a .keras file (it is loaded as "
                f"saved). Received: {sorted(kwargs)}"
            )
        from keras_transfer.saving import load_model

        model = load_model(path, compile=False)
        if looks_like_classifier(model):
            model = feature_extractor(model)
            logger.info(
                "%s is a classifier; its head is removed and the features it "
                "classifies are used (%d values from layer %r)",
                spec,
                model.output.shape[-1],
                model.layers[-1].name,
            )
        return dataclasses.replace(load_backbone(model), spec=spec)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return load_backbone(f"saved_model:{spec}", **kwargs)
    if path.is_dir() and all((path / f).is_file() for f in PRESET_FILES):
        return load_backbone(f"keras_hub:{spec}", **kwargs)
    raise ValueError(
        f"Expected the path {spec!r} to be a .keras file, a SavedModel directory "
        "(with saved_model.pb) or a KerasHub preset directory (with config.json and "
        "metadata.json); it is none of these. Other backbones are named "
        f"'<scheme>:<name>' (schemes: {', '.join(sorted(list_backbone_schemes()))})."
    )


def _explicit_backbone(layer: Any) -> Any:
    backbone = getattr(layer, "backbone", None)
    return backbone if isinstance(backbone, keras.layers.Layer) else None


def find_backbone(model: Any) -> Any:
    """Returns the backbone of a model, or None.

    Explicit first: a model or layer whose `backbone` attribute holds a layer names
    its backbone. keras-transfer's builders (`build_classifier`, `build_regressor`,
    `build_multitask`, `build_text_classifier`) set `model.backbone`, as keras-hub
    sets `Task.backbone`; a `TextEncoder` has one too.

    Fallback, for a model of your own or one loaded from a `.keras` file (the
    attribute is not saved): the direct sub-layer that is itself a model (or a
    `HubLayer`) or that holds an explicit `backbone` (a `TextEncoder`: its backbone
    is returned), whichever holds the most weights. Set `model.backbone = layer` on
    your model when that guess is wrong.

    Args:
        model: keras.Model or keras.layers.Layer.

    Returns:
        The backbone layer, or None when `model` names none and has no nested model.

    Examples:
    ```python
    import keras
    from keras_transfer import find_backbone
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)], name="bb")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    assert find_backbone(model) is inner  # the fallback: the nested model
    small = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.backbone = small  # explicit wins
    assert find_backbone(model) is small
    ```
    """
    explicit = _explicit_backbone(model)
    if explicit is not None:
        return explicit
    candidates = [
        layer
        for layer in getattr(model, "layers", [])
        if isinstance(layer, keras.Model | HubLayer)
        or _explicit_backbone(layer) is not None
    ]
    if not candidates:
        return None
    found = max(candidates, key=lambda layer: layer.count_params())
    return _explicit_backbone(found) or found

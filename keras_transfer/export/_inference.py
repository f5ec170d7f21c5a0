"""Finds the inference path of a model: no augmentation, GRL or discriminator.

Export never ships a layer that only matters while training. A model (or a domain
adaptation object) is reduced to what serving needs:

1. An object with an ``inference_model()`` method (e.g. a DANN model) is replaced by the
   model that method returns (feature extractor + label classifier).
2. Training-only layers (the classes of the one registry,
   ``keras_transfer.layers.training_only``: random augmentation, MixUp/CutMix, noise
   layers, GradientReversal, and any added with `register_training_only_layer`) are
   swapped for ``Identity`` by cloning a Functional/Sequential model; the clone shares every
   other layer (and so its weights) with the original.
3. The exported function always calls the model with ``training=False``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.layers.training_only import is_training_only


def training_only_layers(model: Any) -> list[str]:
    """Names of the training-only layers found anywhere inside ``model``.

    A training-only block (e.g. an all-augmentation Sequential) is named once, not
    together with the layers inside it.
    """
    found = []
    for sub in getattr(model, "layers", None) or []:
        if is_training_only(sub):
            found.append(sub.name)
        else:
            found.extend(training_only_layers(sub))
    return found


def _leaf_training_only(model: Any) -> list[str]:
    """Training-only layers that hold no sublayers (what would really run)."""
    found = []
    for sub in getattr(model, "layers", None) or []:
        if getattr(sub, "layers", None):
            found.extend(_leaf_training_only(sub))
        elif is_training_only(sub):
            found.append(sub.name)
    return found


def _is_graph_model(model: Any) -> bool:
    return isinstance(model, keras.Sequential) or (
        isinstance(model, keras.Model) and type(model).__name__ == "Functional"
    )


def resolve_inference_model(model: Any) -> tuple[Any, list[str], list[str]]:
    """Returns ``(inference_model, stripped_layer_names, notes)`` for ``model``.

    Raises:
        TypeError: if ``model`` is neither a Keras model nor has ``inference_model()``.
    """
    notes: list[str] = []
    if callable(getattr(model, "inference_model", None)):
        model = model.inference_model()
        notes.append("exported model.inference_model() (the inference path)")
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "Expected a keras.Model (or an object with an inference_model() method "
            f"returning one). Received: model of type {type(model).__name__}"
        )
    found = training_only_layers(model)
    if not found:
        return model, [], notes
    if not _is_graph_model(model):
        notes.append(
            f"training-only layers {found} kept in a subclassed model: they are "
            "traced with training=False, where they do nothing"
        )
        return model, [], notes

    def clone_fn(layer: Any) -> Any:
        if is_training_only(layer):
            return keras.layers.Identity(name=f"{layer.name}_stripped")
        return layer

    stripped = keras.models.clone_model(model, clone_function=clone_fn, recursive=True)
    left = _leaf_training_only(stripped)
    if left:  # pragma: no cover - clone_model always recurses into graph models
        raise RuntimeError(f"Could not strip training-only layers {left} from model.")
    return stripped, found, notes


def check_built(model: Any) -> None:
    """Raises a clear error when ``model`` was never built or called."""
    if not getattr(model, "built", False):
        raise ValueError(
            f"The model {getattr(model, 'name', model)!r} has never been built or "
            "called, so export does not know its input signature. Build it first "
            "(e.g. `model.build((None, 32, 32, 3))`, call it on a batch, or start a "
            "Sequential model with keras.Input(shape)). Received: a model with "
            "built=False"
        )


def input_signature(
    model: Any, input_shape: tuple | None = None
) -> tuple[tuple[int | None, ...], str]:
    """Returns ``(shape_without_batch, dtype)`` of the single model input.

    Raises:
        ValueError: if the model was never built or has more than one input.
    """
    check_built(model)
    if input_shape is not None:
        return tuple(input_shape), "float32"
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        if len(inputs) != 1:
            raise ValueError(
                "export supports models with exactly one input tensor. Received: "
                f"{len(inputs)} inputs {[tuple(i.shape) for i in inputs]}"
            )
        dtype = str(getattr(inputs[0], "dtype", "float32") or "float32")
        return tuple(inputs[0].shape[1:]), dtype
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if len(shapes) == 1:
        shape = next(iter(shapes.values()))
        return tuple(shape[1:]), "float32"
    raise ValueError(
        f"Could not infer the input shape of model {model.name!r} (a subclassed model "
        "with no recorded build shape). Pass input_shape=(H, W, C) (no batch axis)."
    )


def output_count(model: Any) -> int:
    """Number of model outputs (1 for subclassed models that return one tensor)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return 1
    return len(outputs) if outputs else 1


def top1(probs: np.ndarray) -> np.ndarray:
    """Class ids: argmax over the last axis, or ``p > 0.5`` for one-unit outputs."""
    probs = np.asarray(probs)
    if probs.ndim == 1 or probs.shape[-1] == 1:
        return (probs.reshape(len(probs), -1)[:, 0] > 0.5).astype("int64")
    return probs.reshape(len(probs), -1).argmax(axis=-1)

"""The function every export serves: raw input -> (preprocessing) -> model -> probs."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.export._inference import (
    input_signature,
    output_count,
    resolve_inference_model,
)


@dataclass
class Served:
    """The inference path of a model, ready to trace or to run eagerly."""

    model: Any
    shape: tuple[int | None, ...]
    raw_dtype: str
    preprocessor: Any = None
    stripped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def graph_fn(self, x: Any) -> Any:
        """The traced serving function (casts raw inputs, training=False)."""
        if x.dtype != tf.string:
            x = tf.cast(x, "float32")
        if self.preprocessor is not None:
            x = self.preprocessor(x)
        return self.model(x, training=False)

    def keras_predict(self, x: np.ndarray) -> np.ndarray:
        """Reference predictions with Keras ``predict_on_batch``."""
        if self.preprocessor is not None:
            x = self.preprocessor(x)
        elif x.dtype != np.float32 and x.dtype != object:
            x = x.astype("float32")
        return np.asarray(self.model.predict_on_batch(x))


def prepare(
    model: Any,
    *,
    input_shape: tuple | None = None,
    input_dtype: str | None = None,
    preprocessor: Any = None,
    include_preprocessing: bool = True,
) -> Served:
    """Resolves the inference path and input signature of ``model``.

    Raises:
        ValueError: for never-built models, several inputs or several outputs.
    """
    inference, stripped, notes = resolve_inference_model(model)
    if preprocessor is not None and include_preprocessing:
        if input_shape is None:
            raise ValueError(
                "Expected input_shape (the raw input shape without batch axis) when a "
                "preprocessor is folded into the export. Received: input_shape=None"
            )
        shape, dtype = tuple(input_shape), "float32"
    else:
        preprocessor = None
        shape, dtype = input_signature(inference, input_shape)
    if output_count(inference) != 1:
        raise ValueError(
            f"export expects a model with one output (class probabilities). Received: "
            f"a model with {output_count(inference)} outputs. For a domain adaptation "
            "model pass the object with an inference_model() method, or a "
            "keras.Model(inputs, class_output)."
        )
    if input_dtype is not None:
        dtype = str(input_dtype)
    if dtype not in ("float32", "float16", "uint8", "int32", "string"):
        dtype = "float32"
    return Served(inference, shape, dtype, preprocessor, stripped, notes)


def write_saved_model(
    served: Served,
    directory: str,
    *,
    class_names: list[str] | None = None,
    extra_outputs: bool = True,
) -> None:
    """Writes a SavedModel with a ``serving_default`` signature into ``directory``.

    With ``extra_outputs`` the signature returns a dict ``probabilities``,
    ``class_ids`` (and ``class_names``); otherwise just the probabilities tensor
    (what the TFLite converter reads).
    """
    archive = keras.export.ExportArchive()
    archive.track(served.model)
    pre = served.preprocessor
    if isinstance(pre, keras.layers.Layer):
        if not pre.built and served.raw_dtype != "string":
            pre(np.zeros((1, *served.shape), "float32"))  # builds its weights
        if pre.built:
            archive.track(pre)
    spec = tf.TensorSpec([None, *served.shape], served.raw_dtype, name="inputs")
    names = None if class_names is None else tf.constant(list(class_names))

    def serve(inputs):
        probs = served.graph_fn(inputs)
        if not extra_outputs:
            return probs
        if probs.shape[-1] == 1:
            ids = tf.cast(probs[:, 0] > 0.5, "int64")
        else:
            ids = tf.argmax(probs, axis=-1)
        out = {"probabilities": probs, "class_ids": ids}
        if names is not None:
            out["class_names"] = tf.gather(names, ids)
        return out

    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    archive.write_out(directory, verbose=False)


def validate_class_names(class_names: Any) -> list[str] | None:
    """Returns class names as a list of str, or None."""
    if class_names is None:
        return None
    if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
        raise ValueError(
            "Expected class_names to be a list of strings. Received: "
            f"class_names={class_names!r}"
        )
    return list(class_names)


def training_metrics(model: Any, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """User metrics, else the last epoch of ``model.history`` when the model was fit."""
    if metrics is not None:
        return {k: float(v) if np.isscalar(v) else v for k, v in metrics.items()}
    history = getattr(getattr(model, "history", None), "history", None)
    if not history:
        return {}
    return {k: float(v[-1]) for k, v in history.items() if len(v)}


def base_manifest(served: Served, fmt: str, quantization: str, **extra: Any) -> dict:
    """The manifest fields every format shares."""
    return {
        "format": fmt,
        "quantization": quantization,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "source_model": getattr(served.model, "name", None),
        "raw_input": {"shape": [None, *served.shape], "dtype": served.raw_dtype},
        "stripped_layers": served.stripped,
        "notes": served.notes,
        **extra,
    }


def random_inputs(served: Served, n: int = 64, seed: int = 0) -> np.ndarray:
    """Random inputs of the served shape (used only when no data was given)."""
    if any(d is None for d in served.shape):
        raise ValueError(
            f"The model input shape {served.shape} has unknown dimensions; pass "
            "verify_data so verification can run, or verify=False."
        )
    rng = np.random.default_rng(seed)
    if served.raw_dtype == "uint8":
        return rng.integers(0, 256, size=(n, *served.shape)).astype("uint8")
    return rng.uniform(0.0, 1.0, size=(n, *served.shape)).astype("float32")

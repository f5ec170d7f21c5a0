"""The function every export serves: raw input -> (preprocessing) -> model -> probs."""

from __future__ import annotations

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

"""Checks of class labels, input shapes and non-finite inputs, before any step.

Keras reports a one-hot label under a sparse loss as a rank mismatch inside the
loss, a string label as an invalid dtype and an id past the last output as a
graph execution error; these checks say what was wrong and what is accepted.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_one_hot(y: np.ndarray) -> bool:
    """Whether ``y`` is one-hot rows: shape ``(n, k > 1)``, each row one 1, else 0."""
    return (
        y.ndim == 2
        and y.shape[1] > 1
        and y.dtype.kind in "biuf"
        and bool(np.all((y == 0) | (y == 1)))
        and bool(np.all(y.sum(axis=1) == 1))
    )


def whole_numbers(y: np.ndarray) -> bool:
    """Whether every value of ``y`` is a finite whole number (any numeric dtype)."""
    if y.dtype.kind != "f":
        return True
    return bool(np.all(np.isfinite(y) & (y == np.round(y))))


#: Rows checked at a time by `nonfinite_rows` (bounds the temporary mask).
FINITE_CHUNK = 4096


def nonfinite_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the examples (first axis) of a float array holding NaN or inf.

    Integer arrays (uint8 images, token ids) cannot hold either: none. Checked
    `FINITE_CHUNK` rows at a time, so the mask never costs more than that.
    """
    if x.dtype.kind not in "fc":
        return np.zeros(0, "int64")
    bad = []
    for start in range(0, len(x), FINITE_CHUNK):
        rows = x[start : start + FINITE_CHUNK]
        finite = np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)
        bad.append(start + np.flatnonzero(~finite))
    return np.concatenate(bad) if bad else np.zeros(0, "int64")


def refuse_string_labels(y: np.ndarray, role: str = "labels") -> None:
    """Raises a ValueError when ``y`` holds strings or objects, not numbers."""
    if y.dtype.kind not in "biuf":
        sample = y.reshape(-1)[:1].tolist()
        raise ValueError(
            f"Expected integer class ids (0 .. num_classes - 1) as {role}. Received "
            f"labels of dtype {y.dtype} (e.g. {sample}). Map names to ids first: "
            "class_names, y = np.unique(y, return_inverse=True)."
        )


def _sparse_loss(model: Any) -> bool:
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss == "sparse_categorical_crossentropy"
    fn = getattr(loss, "fn", None)
    return getattr(fn, "__name__", "") == "sparse_categorical_crossentropy"


def check_sparse_labels(model: Any, y: Any) -> None:
    """Checks array labels against a model compiled with a sparse categorical loss.

    Only arrays (and lists) are checked, and only when the model's loss is
    sparse categorical crossentropy (the default of `compile_model` for
    classification); datasets and other losses pass through to Keras.

    Args:
        model: keras.Model. The compiled model.
        y: the labels given to `fit`.

    Raises:
        ValueError: strings, one-hot rows (pass ``y.argmax(-1)``), fractional
            values or ids outside ``[0, outputs)``.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.labels import check_sparse_labels
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(loss="sparse_categorical_crossentropy")
    check_sparse_labels(model, np.array([0, 2, 1]))  # fine
    try:
        check_sparse_labels(model, np.eye(3))
    except ValueError as e:
        assert "argmax" in str(e)
    ```
    """
    if not isinstance(y, np.ndarray | list) or not _sparse_loss(model):
        return
    y = np.asarray(y)
    refuse_string_labels(y)
    outputs = model.output_shape[-1] if hasattr(model, "output_shape") else None
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"Expected integer class ids, shape (n,), for a model compiled with "
            f"sparse_categorical_crossentropy. Received labels of shape {y.shape} "
            "(one-hot rows?): pass y.argmax(-1), or compile with "
            "loss='categorical_crossentropy'."
        )
    if y.size == 0:
        return
    if not whole_numbers(y):
        raise ValueError(
            "Expected integer class ids as labels. Received float labels that are "
            "not whole numbers."
        )
    low, high = y.min(), y.max()
    if isinstance(outputs, int) and (low < 0 or high >= outputs):
        raise ValueError(
            f"Expected class ids in [0, {outputs}) for a model with {outputs} "
            f"outputs. Received labels in [{low:g}, {high:g}]: build the model "
            "with num_classes = the number of classes, and ids from 0."
        )


def check_input_shape(model: Any, x: Any) -> None:
    """Checks that array inputs match a single-input model's per-example shape.

    Keras reports a mismatch from inside the traced step ("in user code: ...");
    this says which shape came and which the model takes. Only NumPy arrays are
    checked, against dimensions the model fixes (``None`` matches anything).

    Raises:
        ValueError: the per-example shapes differ.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.labels import check_input_shape
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    check_input_shape(model, np.zeros((2, 8, 8, 3)))  # fine
    try:
        check_input_shape(model, np.zeros((2, 16, 16, 3)))
    except ValueError as e:
        assert "(8, 8, 3)" in str(e)
    ```
    """
    if not isinstance(x, np.ndarray) or len(getattr(model, "inputs", None) or []) != 1:
        return
    wanted = tuple(model.inputs[0].shape[1:])
    got = x.shape[1:]
    fits = len(got) == len(wanted) and all(
        w is None or w == g for w, g in zip(wanted, got)
    )
    if not fits:
        raise ValueError(
            f"Expected inputs of shape {wanted} per example (the model's input). "
            f"Received: x of shape {x.shape}, i.e. {got} per example. Resize the "
            "images to the model's size (or build the model with input_shape="
            f"{got})."
        )


def _rank(spec: Any) -> int | None:
    shape = getattr(spec, "shape", None)
    rank = getattr(shape, "rank", None)
    return rank if isinstance(rank, int) else None


def check_dataset(model: Any, data: Any, role: str = "train") -> None:
    """Checks a `tf.data.Dataset` of ``(inputs, labels)`` batches against a model.

    Reads only the dataset's ``element_spec`` (nothing is iterated): an unbatched
    dataset, one whose elements are not ``(inputs, labels[, weights])``, and, for a
    model compiled with sparse categorical crossentropy, one-hot label rows (e.g.
    ``image_dataset_from_directory(label_mode="categorical")``) are refused with
    what to do; Keras would fail inside the loss or the feature cache. Anything
    without an ``element_spec`` passes through.

    Args:
        model: keras.Model. The compiled model.
        data: the ``train`` or ``validation`` argument.
        role: str. How the message names it. Defaults to ``"train"``.

    Raises:
        ValueError: as above.

    Examples:
    ```python
    import numpy as np
    import tensorflow as tf
    from keras_transfer._backend import keras
    from keras_transfer.labels import check_dataset
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(loss="sparse_categorical_crossentropy")
    x, y = np.zeros((6, 4), "float32"), np.arange(6) % 3
    check_dataset(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(2))
    for bad in (tf.data.Dataset.from_tensor_slices((x, y)),  # not batched
                tf.data.Dataset.from_tensor_slices((x, np.eye(3)[y])).batch(2)):
        try:
            check_dataset(model, bad)
        except ValueError as e:
            assert "batch(" in str(e) or "argmax" in str(e)
    ```
    """
    spec = getattr(data, "element_spec", None)
    if spec is None:
        return
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            f"Expected a {role} dataset of (inputs, labels) or (inputs, labels, "
            f"sample_weights) batches. Received elements {spec}. Pair each input with "
            "its label, e.g. tf.data.Dataset.zip((images, labels))."
        )
    x, y = spec[0], spec[1]
    inputs = getattr(model, "inputs", None) or []
    x_rank = _rank(x)
    if len(inputs) == 1 and x_rank is not None:
        wanted = len(inputs[0].shape)  # batch axis included
        if x_rank == wanted - 1:
            raise ValueError(
                f"Expected a batched {role} dataset: the model takes inputs of shape "
                f"{tuple(inputs[0].shape)} and the dataset's elements are single "
                f"examples of shape {tuple(x.shape)}. Batch it first: "
                "dataset.batch(32)."
            )
    if _rank(y) == 2 and y.shape[-1] not in (None, 1) and _sparse_loss(model):
        raise ValueError(
            f"Expected integer class ids, shape (batch,), in the {role} dataset for "
            "a model compiled with sparse_categorical_crossentropy. Received labels "
            f"of shape {tuple(y.shape)} (one-hot rows?): read the folder with "
            "label_mode='int', or map them to ids: dataset.map(lambda x, y: (x, "
            "tf.argmax(y, -1))), or compile with loss='categorical_crossentropy'."
        )

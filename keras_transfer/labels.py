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

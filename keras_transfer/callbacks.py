"""Callbacks and checks that keep a training run from failing silently.

A run whose final accuracy is no better than always predicting the most frequent
class has learned nothing, whatever its status says (a frozen random backbone, a
learning rate far too high, labels shuffled away from their inputs). The check here
turns that into a `UserWarning` plus a log line on the `keras_transfer` logger.
`SaveModelCheckpoint` saves the model each epoch with `saving.save_model`, so a
checkpoint keeps which layers are frozen (what `keras.callbacks.ModelCheckpoint`
loses for a KerasHub backbone).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.saving import save_model

__all__ = [
    "MajorityClassCheck",
    "SaveModelCheckpoint",
    "check_against_majority",
    "check_fit_history",
    "majority_rate",
]

logger = logging.getLogger("keras_transfer")


def majority_rate(labels: Any) -> float:
    """Accuracy of always predicting the most frequent class of `labels`.

    Args:
        labels: array-like of int class ids (shape `(n,)`), or one-hot /
            probability rows (shape `(n, num_classes)`, argmax is taken).

    Returns:
        A float in (0, 1]; 0.0 for no labels.

    Examples:
    ```python
    from keras_transfer.callbacks import majority_rate
    assert majority_rate([0, 0, 1, 2]) == 0.5
    ```
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[-1] > 1:
        y = y.argmax(axis=-1)
    y = y.reshape(-1)
    if y.size == 0:
        return 0.0
    _, counts = np.unique(y, return_counts=True)
    return float(counts.max() / y.size)


def check_against_majority(
    accuracy: float,
    labels: Any,
    *,
    margin: float = 0.01,
    context: str = "",
) -> bool:
    """Warns when `accuracy` is no better than the majority-class rate of `labels`.

    Args:
        accuracy: float. The final accuracy to judge.
        labels: array-like. The labels that accuracy was measured on.
        margin: float. Accuracy must beat the majority rate by more than this.
            Defaults to 0.01.
        context: str. Appended to the message (what to check, which run).

    Returns:
        True when it warned.

    Examples:
    ```python
    import warnings
    from keras_transfer.callbacks import check_against_majority
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert check_against_majority(0.25, [0, 1, 2, 3])
    assert not check_against_majority(0.9, [0, 1, 2, 3])
    ```
    """
    baseline = majority_rate(labels)
    if accuracy is None or not np.isfinite(accuracy) or accuracy > baseline + margin:
        return False
    message = (
        f"final accuracy {accuracy:.3f} is no better than always predicting the "
        f"majority class ({baseline:.3f}): the model learned nothing useful. Check "
        "that the backbone has pretrained weights (a frozen random backbone gives "
        "empty features; offline, make one with `keras-transfer pretrain`), that "
        "the learning rate is not too high or too low, and that the labels match "
        "the inputs."
    )
    if context:
        message += f" {context}"
    # a configured log gets it too; without one, Python would print it twice
    if logger.hasHandlers():
        logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=2)
    return True


def _labels_of(data: Any) -> np.ndarray | None:
    """The labels of `(x, y[, sample_weight])` fit data; None for other forms."""
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        try:
            y = np.asarray(data[1], dtype="float32")
        except (TypeError, ValueError):
            return None
        if y.ndim == 2 and not np.allclose(y.sum(axis=-1), 1.0, atol=1e-3):
            return None  # multi-label targets: accuracy there is not top-1
        return y
    return None


def check_fit_history(
    history: dict, train: Any = None, validation: Any = None, *, context: str = ""
) -> bool:
    """Runs `check_against_majority` on the last epoch of a `fit` history.

    Uses `val_accuracy` against the validation labels when both are known, else
    `accuracy` against the training labels. Labels are known for `(x, y)` tuples;
    for a `tf.data.Dataset` nothing is checked (pass the labels to
    `MajorityClassCheck` or call `check_against_majority` yourself).

    Args:
        history: dict. `History.history` (metric name -> per-epoch values).
        train: The training data passed to `fit`, or None.
        validation: The validation data, or None.
        context: str. Appended to the warning.

    Returns:
        True when it warned.
    """
    for key, data in (("val_accuracy", validation), ("accuracy", train)):
        values = history.get(key) or []
        labels = _labels_of(data)
        if values and values[-1] is not None and labels is not None:
            return check_against_majority(float(values[-1]), labels, context=context)
    return False


class MajorityClassCheck(keras.callbacks.Callback):
    """At the end of `fit`, warns if accuracy is no better than the majority class.

    Watches `monitor` (e.g. `"val_accuracy"`) over the epochs and compares its last
    value with the majority-class rate of `labels` (the labels that metric is
    measured on), through `check_against_majority`.

    Args:
        labels: array-like. Labels of the data `monitor` is computed on.
        monitor: str. The accuracy log key. Defaults to `"val_accuracy"`; when it is
            missing from the logs, `"accuracy"` is used instead.
        margin: float. See `check_against_majority`. Defaults to 0.01.
        context: str. Appended to the warning.

    Examples:
    ```python
    import numpy as np
    import keras
    from keras_transfer.callbacks import MajorityClassCheck
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, "softmax")])
    model.compile(
        "adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    y = np.arange(8) % 2
    check = MajorityClassCheck(y, monitor="accuracy")
    model.fit(np.ones((8, 2)), y, epochs=1, verbose=0, callbacks=[check])
    assert check.warned  # constant inputs: no better than chance
    ```
    """

    def __init__(
        self,
        labels: Any,
        *,
        monitor: str = "val_accuracy",
        margin: float = 0.01,
        context: str = "",
    ) -> None:
        super().__init__()
        self.labels = np.asarray(labels)
        self.monitor = monitor
        self.margin = margin
        self.context = context
        self.last_logs: dict = {}
        self.warned = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.last_logs = dict(logs or {})

    def on_train_end(self, logs: dict | None = None) -> None:
        logs = {**self.last_logs, **(logs or {})}
        key = self.monitor if self.monitor in logs else "accuracy"
        if key not in logs:
            return
        self.warned = check_against_majority(
            float(logs[key]), self.labels, margin=self.margin, context=self.context
        )


class SaveModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to a `.keras` file at the end of every epoch, frozen layers kept.

    `keras.callbacks.ModelCheckpoint(path)` with `saving.save_model`: each save is
    whole or not at all and records every layer's `trainable` flag, which
    `keras_transfer.load_model` restores (a KerasHub backbone's frozen layers, and
    so the optimizer state, survive the reload).

    Args:
        path: str or PathLike. The `.keras` file, overwritten each epoch.

    Examples:
    ```python
    import os, tempfile
    import numpy as np
    import keras_transfer as kt
    from keras_transfer._backend import keras
    from keras_transfer.callbacks import SaveModelCheckpoint
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    path = os.path.join(tempfile.mkdtemp(), "last.keras")
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, verbose=0,
              callbacks=[SaveModelCheckpoint(path)])
    assert kt.load_model(path).optimizer.iterations.numpy() == 1
    ```
    """

    def __init__(self, path: Any) -> None:
        super().__init__()
        if not str(path).endswith(".keras"):
            raise ValueError(
                f"Expected a path ending in '.keras'. Received: path={str(path)!r}"
            )
        self.path = path

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_model(self.model, self.path)

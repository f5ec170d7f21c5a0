"""Labels and inputs of a `.npz` data source: class names, ids, finite values.

Labels in a `.npz` may be integer ids (shape ``(n,)`` or ``(n, 1)``), one-hot
rows ``(n, classes)`` or strings (the class names themselves); every form becomes
int ids here, with the class names they stand for. A ``class_names`` array names
the ids (or lists the strings' order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer.config import ConfigError
from keras_transfer.labels import is_one_hot, nonfinite_rows, whole_numbers

LABEL_KEYS = ("y", "y_train", "y_test")


def _check_label_array(y: np.ndarray, source: str, key: str) -> None:
    where = f"{source!r} array {key!r}"
    if y.ndim == 2 and y.shape[1] > 1 and not is_one_hot(y):
        raise ConfigError(
            f"{where} has labels of shape {y.shape} whose rows are not one-hot: "
            "expected class ids (n,), one-hot rows (n, classes) or class-name "
            "strings."
        )
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] == 0):
        raise ConfigError(
            f"{where} has labels of shape {y.shape}: expected class ids (n,), "
            "one-hot rows (n, classes) or class-name strings."
        )
    if not whole_numbers(y):
        raise ConfigError(
            f"{where} holds float labels that are not whole numbers: expected "
            "class ids, one-hot rows or class-name strings."
        )
    if y.dtype.kind in "iuf" and y.size and not is_one_hot(y) and y.min() < 0:
        raise ConfigError(
            f"{where} holds negative class ids ({y.min():g}): expected ids from 0."
        )
    if y.dtype.kind not in "biufU":
        raise ConfigError(
            f"{where} holds labels of dtype {y.dtype}: expected class ids, one-hot "
            "rows or class-name strings."
        )


def npz_class_names(npz: Any, source: str, field: str) -> list[str]:
    """The class names of a labelled `.npz` (`class_names`, else from its labels).

    Raises:
        ConfigError: no label array, or labels in a form not accepted.
    """
    keys = [k for k in LABEL_KEYS if k in npz]
    if "class_names" in npz:
        names = [str(c) for c in npz["class_names"]]
        for key in keys:
            _check_label_array(npz[key], source, key)
        return names
    if not keys:
        raise ConfigError(
            f"{field}={source!r} has no labels: expected arrays 'y' or 'y_train' "
            f"(found {sorted(npz.files)})."
        )
    arrays = {k: npz[k] for k in keys}
    for key, y in arrays.items():
        _check_label_array(y, source, key)
    if any(y.dtype.kind == "U" for y in arrays.values()):
        if not all(y.dtype.kind == "U" for y in arrays.values()):
            raise ConfigError(
                f"{field}={source!r} mixes string and numeric label arrays "
                f"({', '.join(f'{k}: {y.dtype}' for k, y in arrays.items())})."
            )
        return sorted({str(v) for y in arrays.values() for v in y.reshape(-1)})
    widths = {y.shape[1] for y in arrays.values() if is_one_hot(y)}
    if widths:
        return [str(i) for i in range(max(widths))]
    top = max(int(np.max(y)) for y in arrays.values() if y.size)
    return [str(i) for i in range(top + 1)]


def npz_label_ids(y: np.ndarray, names: list[str], source: str, key: str) -> np.ndarray:
    """A label array of a `.npz` as int32 class ids into `names`.

    Raises:
        ConfigError: a string label that is not one of `names`, an id past them.
    """
    _check_label_array(y, source, key)
    if y.dtype.kind == "U":
        index = {name: i for i, name in enumerate(names)}
        flat = y.reshape(-1)
        unknown = sorted({str(v) for v in flat if str(v) not in index})
        if unknown:
            raise ConfigError(
                f"{source!r} array {key!r} has labels {unknown[:5]} that are not in "
                f"its class_names {names}."
            )
        return np.asarray([index[str(v)] for v in flat], "int32")
    ids = y.argmax(axis=1) if is_one_hot(y) else y.reshape(-1)
    if ids.size and int(ids.max()) >= len(names):
        raise ConfigError(
            f"{source!r} array {key!r} has class id {int(ids.max())}, but there are "
            f"{len(names)} class_names."
        )
    return ids.astype("int32")


def check_finite_inputs(x: np.ndarray, source: str, key: str) -> None:
    """Refuses float inputs with NaN or infinity: training would turn every weight
    into NaN at the first step that sees one, and the run would go on."""
    bad = nonfinite_rows(x)
    if len(bad):
        raise ConfigError(
            f"{source!r} array {key!r} has NaN or infinite values in {len(bad)} "
            f"example(s) (indices {bad[:5].tolist()}): drop or repair them."
        )

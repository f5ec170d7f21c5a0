"""Input checks and the held-out source split of `adapt` (no target label, ever)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from keras_transfer._backend import tf
from keras_transfer.data import spill
from keras_transfer.data.files import lazy_asarray
from keras_transfer.data.pipelines import refuse_infinite
from keras_transfer.labels import (
    is_one_hot,
    nonfinite_rows,
    refuse_string_labels,
    whole_numbers,
)


def labelled_arrays(source: Any) -> tuple[Any, np.ndarray]:
    refuse_infinite(source, "source", "adapt")
    if isinstance(source, tf.data.Dataset):
        spec = source.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ValueError(
                "Expected source to be labelled: (x, y) arrays or a tf.data.Dataset "
                f"yielding (x, y). Received a dataset with elements {spec}"
            )
        _one_input(spec[0], "source")
        return _read(source, "source", labelled=True)
    if not isinstance(source, (tuple, list)) or len(source) != 2:
        raise ValueError(
            "Expected source to be labelled: a tuple (x, y) or a tf.data.Dataset "
            f"yielding (x, y). Received: source of type {type(source).__name__}"
        )
    _one_input(source[0], "source")
    return lazy_asarray(source[0]), np.asarray(source[1])


def _one_input(x: Any, role: str) -> None:
    """Refuses several inputs per example (a dict or tuple of arrays): adapt
    splits, joins and streams one array of inputs per domain."""
    if isinstance(x, dict | tuple | list):
        kind = type(x).__name__
        keys = list(x) if isinstance(x, dict) else f"{len(x)} entries"
        raise ValueError(
            f"Expected the {role} inputs to be one array (images, feature vectors, "
            "token ids or strings) per example; adapt does not take several inputs "
            f"per example. Received a {kind} of inputs ({keys}). Give adapt an "
            "encoder with one input (e.g. a text encoder that takes the strings and "
            "tokenizes inside), or precompute one feature array."
            + (
                f" If the {kind} holds one example per entry (a list of images), "
                "stack it into one array: np.stack(x)."
                if isinstance(x, tuple | list)
                else ""
            )
        )


def unlabelled_array(target: Any) -> Any:
    refuse_infinite(target, "target", "adapt")
    if isinstance(target, tf.data.Dataset):
        spec = target.element_spec
        if isinstance(spec, tuple):
            raise ValueError(
                "Expected target to be unlabelled (inputs only): adaptation must not "
                "see target labels. Drop them with target.map(lambda x, y: x). "
                f"Received a dataset with elements {spec}"
            )
        _one_input(spec, "target")
        return _read(target, "target", labelled=False)[0]
    if isinstance(target, dict):
        _one_input(target, "target")
    if isinstance(target, (tuple, list)):
        kind = type(target).__name__
        raise ValueError(
            "Expected target to be unlabelled inputs x (an array or a dataset of x), "
            f"not a {kind}: adaptation must not see target labels, and a {kind} "
            "reads as (x, y). A list of images: pass np.stack(images). Received: "
            f"target {kind} of length {len(target)}"
        )
    return lazy_asarray(target)


def _read(ds: Any, role: str, labelled: bool) -> tuple[Any, Any]:
    """A dataset read once: an array, or past `spill.SPILL_BYTES` a
    `SpilledArray` on disk; NaN / infinite inputs refused as they are read."""
    bad: list[int] = []

    def collect(x: np.ndarray, first: int) -> None:
        if x.dtype.kind in "fc":
            bad.extend((nonfinite_rows(x) + first).tolist())

    x, y = spill.read_dataset(ds, role, labelled=labelled, check=collect)
    _refuse_nonfinite(bad, role)
    return x, y


def source_labels(y: Any, n: int) -> tuple[np.ndarray, int | None]:
    """The source labels as int64 class ids, shape ``(n,)``.

    Accepts integer ids of shape ``(n,)`` or ``(n, 1)`` (floats holding whole
    numbers too) and one-hot rows of shape ``(n, k)``, which become their argmax.
    Returns the ids and, for one-hot labels, their width ``k`` (the number of
    classes they name), else None.

    Raises:
        ValueError: strings, soft (not one-hot) rows, fractional or non-finite
            values, or a count that is not one label per example.
    """
    y = np.asarray(y)
    refuse_string_labels(y, "source labels")
    width = None
    if y.ndim == 2 and y.shape[1] > 1 and len(y) == n:
        if not is_one_hot(y):
            raise ValueError(
                "Expected integer class ids or one-hot rows as source labels. "
                f"Received labels of shape {y.shape} whose rows are not one-hot "
                "(soft labels are not accepted): pass y.argmax(-1) if each row's "
                "largest value is its class."
            )
        y, width = y.argmax(axis=1), y.shape[1]
    elif y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(
            "Expected source labels of shape (n,), (n, 1) or one-hot (n, classes). "
            f"Received labels of shape {y.shape} for {n} examples"
        )
    y = y.reshape(-1)
    if len(y) != n:
        raise ValueError(
            f"Expected one label per source example. Received {n} examples and "
            f"{len(y)} labels"
        )
    if not whole_numbers(y):
        bad = y[~(np.isfinite(y) & (y == np.round(y)))][:3].tolist()
        raise ValueError(
            "Expected integer class ids as source labels. Received float labels "
            f"that are not whole numbers (e.g. {bad})"
        )
    return y.astype("int64"), width


def check_finite(x: Any, role: str) -> None:
    """Refuses float inputs holding NaN or infinity before anything trains.

    One such example turns every weight into NaN at its first step, and the
    run would go on silently with a model that predicts class 0. Integer
    inputs (uint8 images, token ids) and `ImageFiles` cannot hold either.
    """
    if isinstance(x, np.ndarray):
        _refuse_nonfinite(nonfinite_rows(x).tolist(), role)


def _refuse_nonfinite(bad: list[int], role: str) -> None:
    if bad:
        raise ValueError(
            f"Expected finite {role} inputs. Received {len(bad)} {role} example(s) "
            f"with NaN or infinite values (indices {bad[:5]}"
            f"{', ...' if len(bad) > 5 else ''}): one of them would turn every "
            "weight into NaN at its first training step. Drop or repair them."
        )


def split_source(
    x: np.ndarray, y: np.ndarray, validation_split: float, seed: int
) -> tuple:
    """A stratified, seeded train / held-out split of the labelled source."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            "Expected validation_split in (0, 1). "
            f"Received: validation_split={validation_split}"
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        small = [int(c) for c, n in zip(classes, counts) if n < 2]
        raise ValueError(
            "The source is too small to hold out a validation split: every class "
            f"needs at least 2 labelled examples; classes {small} have fewer."
        )
    val = []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(y == c))
        val.extend(idx[: max(1, int(round(validation_split * len(idx))))])
    val = np.sort(np.asarray(val))
    train = np.setdiff1d(np.arange(len(y)), val)
    return x[train], y[train], x[val], y[val]


def check_inputs(xs, ys, xt, num_classes) -> int:
    if len(xs) != len(ys):
        raise ValueError(
            f"Expected one label per source example. Received {len(xs)} examples and "
            f"{len(ys)} labels"
        )
    if len(xt) < 2:
        raise ValueError(
            f"Expected at least 2 unlabelled target examples. Received {len(xt)}"
        )
    if xs.shape[1:] != xt.shape[1:]:
        raise ValueError(
            "Expected source and target inputs of the same shape. Received: source "
            f"{xs.shape[1:]}, target {xt.shape[1:]}"
        )
    labels = np.unique(ys)
    if len(labels) < 2:
        raise ValueError(
            "Expected at least two classes in the source labels. Received labels "
            f"{labels.tolist()}"
        )
    k = int(num_classes) if num_classes is not None else int(labels.max()) + 1
    if k < 2 or labels.min() < 0 or labels.max() >= k:
        raise ValueError(
            "Expected integer source labels in [0, num_classes) with num_classes >= 2."
            f" Received: num_classes={num_classes}, labels in "
            f"[{labels.min()}, {labels.max()}]"
        )
    missing = sorted(set(range(k)) - set(labels.tolist()))
    if num_classes is None and missing:
        logging.getLogger("keras_transfer").warning(
            "adapt: the source labels never use class ids %s, so the model gets %d "
            "outputs (labels 0 .. %d) and never learns %s. Pass num_classes and "
            "ids from 0 if that is not meant.",
            missing,
            k,
            k - 1,
            "that class" if len(missing) == 1 else "those classes",
        )
    return k

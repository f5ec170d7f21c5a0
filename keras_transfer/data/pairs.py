"""Pairs labelled source batches with unlabelled target batches (domain adaptation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import tf


def _files(data: Any) -> bool:
    from keras_transfer.data.lazy import LazyArray

    if isinstance(data, LazyArray):
        return True
    return isinstance(data, tuple | list) and bool(data) and _files(data[0])


def _as_dataset(
    data: Any, role: str, shuffle: bool = False, seed: int = 0
) -> tf.data.Dataset:
    if isinstance(data, tf.data.Dataset):
        return data
    if _files(data):  # a lazy array (image files, spilled rows): streamed
        from keras_transfer.data.folders import files_dataset

        parts = data if isinstance(data, tuple | list) else (data,)
        rest = [np.asarray(a) for a in parts[1:]]
        return files_dataset(parts[0], *rest, shuffle=shuffle, seed=seed)
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        return tf.data.Dataset.from_tensor_slices(data)
    if isinstance(data, (tuple, list)) and all(
        isinstance(a, np.ndarray) or tf.is_tensor(a) for a in data
    ):
        return tf.data.Dataset.from_tensor_slices(tuple(data))
    raise ValueError(
        f"Expected {role} to be a tf.data.Dataset, an array, or a tuple of arrays. "
        f"Received: {role} of type {type(data).__name__}"
    )


def _looks_batched(ds: tf.data.Dataset) -> bool:
    x_spec = tf.nest.flatten(ds.element_spec)[0]
    shape = getattr(x_spec, "shape", None)
    return (
        shape is not None
        and shape.rank is not None
        and shape.rank >= 2
        and (shape[0] is None)
    )


def _features_spec(spec: Any):
    return tf.nest.flatten(spec)[0]


def domain_pairs(
    source_ds: Any,
    target_ds: Any,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    buffer_size: int = 10_000,
) -> tf.data.Dataset:
    """Zips labelled source with unlabelled target, repeating the shorter domain.

    Each element is ``({"source": x_s, "target": x_t}, y_s)`` (plus ``w_s`` when the
    source yields sample weights), with ``batch_size`` examples of each domain. One
    pass over the result is one pass over the larger domain; the smaller one is
    repeated (reshuffled each time). Batched datasets (leading dimension None) are
    unbatched first.

    Args:
        source_ds: tf.data.Dataset yielding ``(x, y)`` or ``(x, y, w)``, or a tuple
            of arrays ``(x, y)``/``(x, y, w)`` (``x`` may be
            `folders.ImageFiles`: streamed from disk).
        target_ds: tf.data.Dataset yielding ``x`` only, or an array (or
            `ImageFiles`).
        batch_size: int. Examples per domain per batch.
        shuffle: bool. Shuffle both domains. Defaults to True.
        seed: int. Shuffle seed. Defaults to 0.
        buffer_size: int. Shuffle buffer. Defaults to 10000.

    Returns:
        A batched, prefetched `tf.data.Dataset` for `DomainAdaptationModel.fit`.

    Raises:
        ValueError: If the source has no labels, the target has labels, the two
            domains' input shapes or dtypes differ, or ``batch_size`` < 1.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.data import domain_pairs
    xs, ys = np.zeros((10, 4), "float32"), np.zeros(10, "int32")
    xt = np.ones((25, 4), "float32")
    pairs = domain_pairs((xs, ys), xt, batch_size=5)
    (x, y), = pairs.take(1)
    assert x["source"].shape == (5, 4) and x["target"].shape == (5, 4)
    assert len(list(pairs)) == 5
    ```
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"Expected batch_size to be an int >= 1. Received: {batch_size!r}"
        )
    source = _as_dataset(source_ds, "source_ds", shuffle, seed)
    target = _as_dataset(target_ds, "target_ds", shuffle, seed + 1)
    source = source.unbatch() if _looks_batched(source) else source
    target = target.unbatch() if _looks_batched(target) else target
    s_spec, t_spec = source.element_spec, target.element_spec
    if not isinstance(s_spec, tuple) or len(s_spec) not in (2, 3):
        raise ValueError(
            "Expected source_ds to yield labelled examples (x, y) or (x, y, w). "
            f"Received elements with spec {s_spec}"
        )
    if isinstance(t_spec, tuple):
        raise ValueError(
            "Expected target_ds to yield inputs only (x), since target labels are "
            "unknown in unsupervised domain adaptation; drop them with "
            f"target_ds.map(lambda x, y: x). Received elements with spec {t_spec}"
        )
    xs_spec = s_spec[0]
    try:
        tf.nest.assert_same_structure(xs_spec, t_spec)
        compatible = all(
            a.shape.is_compatible_with(b.shape) and a.dtype == b.dtype
            for a, b in zip(tf.nest.flatten(xs_spec), tf.nest.flatten(t_spec))
        )
    except (ValueError, TypeError):
        compatible = False
    if not compatible and _castable(xs_spec, t_spec):
        # e.g. uint8 source arrays and a float32 `from_directory` target, both in
        # [0, 255]: both become float32 (lossless for 8- and 16-bit values)
        source = source.map(lambda x, *rest: (tf.cast(x, "float32"), *rest))
        target = target.map(lambda x: tf.cast(x, "float32"))
        compatible = True
    if not compatible:
        raise ValueError(
            "Expected source and target inputs of the same shape and dtype. "
            f"Received: source x {xs_spec}, target x {t_spec}"
        )
    n_s = int(source.cardinality())
    n_t = int(target.cardinality())
    # Streamed folders (`ImageFiles`) are shuffled by file name above, with no
    # buffer of decoded images.
    if shuffle and not _files(source_ds):
        source = source.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    if shuffle and not _files(target_ds):
        target = target.shuffle(
            buffer_size, seed=seed + 1, reshuffle_each_iteration=True
        )
    finite = tf.data.INFINITE_CARDINALITY not in (n_s, n_t)
    if finite and n_s >= 0 and n_t >= 0:
        if n_s >= n_t:
            target = target.repeat()
        else:
            source = source.repeat()

    def arrange(s, t):
        return ({"source": s[0], "target": t}, *s[1:])

    pairs = tf.data.Dataset.zip((source, target)).map(arrange)
    return pairs.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _castable(a: Any, b: Any) -> bool:
    """Two single numeric tensors of compatible shapes but different dtypes."""
    if tf.nest.is_nested(a) or tf.nest.is_nested(b):
        return False
    numeric = all(t.dtype.is_integer or t.dtype.is_floating for t in (a, b))
    return numeric and a.shape.is_compatible_with(b.shape)

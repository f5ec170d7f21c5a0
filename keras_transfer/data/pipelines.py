"""tf.data helpers: datasets from numpy arrays, image folders and TFDS names."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_transfer._backend import tf


def _check_batch_size(batch_size: Any) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(
            f"Expected batch_size to be an int >= 1. Received: batch_size={batch_size!r}"
        )


def finish(
    ds: tf.data.Dataset,
    *,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
    preprocess: Any = None,
    cache: bool = True,
    buffer_size: int = 1024,
) -> tf.data.Dataset:
    """Caches, shuffles, batches, preprocesses and prefetches an unbatched dataset.

    Args:
        ds: tf.data.Dataset of unbatched elements `x` or `(x, y[, w])`.
        batch_size: int or None. None leaves the dataset unbatched.
        shuffle: bool. Reshuffle each epoch.
        seed: int. Shuffle seed.
        preprocess: callable or None. Applied to `x` of each batch (e.g. a
            `LoadedBackbone.preprocessor`).
        cache: bool. Cache elements in memory after the first pass.
        buffer_size: int. Shuffle buffer size.

    Returns:
        The finished dataset.
    """
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        _check_batch_size(batch_size)
        ds = ds.batch(batch_size)
    if preprocess is not None:

        def apply(*element: Any) -> Any:
            if len(element) == 1:
                return preprocess(element[0])
            return (preprocess(element[0]), *element[1:])

        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def from_arrays(
    x: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int = 0,
    preprocess: Any = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Builds a dataset from numpy arrays (or dicts of arrays).

    Args:
        x: np.ndarray, dict of arrays, or a lazy array (`folders.ImageFiles`,
            `spill.SpilledArray`: streamed from disk, image files decoded in
            parallel; `cache` does not apply). Inputs.
        y: np.ndarray or None. Targets; None for unlabelled data.
        sample_weight: np.ndarray or None. Per-example weights.
        batch_size: int or None. Defaults to 32.
        shuffle: bool. Defaults to True.
        seed: int. Defaults to 0.
        preprocess: callable or None. Applied to batched inputs.
        cache: bool. Defaults to True.

    Returns:
        A `tf.data.Dataset` of `x`, `(x, y)` or `(x, y, sample_weight)`.

    Raises:
        ValueError: arrays of different lengths, or weights without labels.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.data import from_arrays
    ds = from_arrays(np.zeros((10, 4)), np.arange(10), batch_size=4)
    assert [int(b[0].shape[0]) for b in ds] == [4, 4, 2]
    ```
    """
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    from keras_transfer.data.lazy import LazyArray

    if isinstance(x, LazyArray):  # image files or spilled rows: stream them
        from keras_transfer.data.directory import _files_pipeline

        _check_lengths(n, y, sample_weight)
        return _files_pipeline(
            x,
            None if y is None else np.asarray(y),
            sample_weight=None if sample_weight is None else np.asarray(sample_weight),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            preprocess=preprocess,
            cache=False,
            dtype=np.dtype(x.dtype).name,
        )
    _check_lengths(n, y, sample_weight)
    parts = [x]
    for arr in (y, sample_weight):
        if arr is not None:
            parts.append(np.asarray(arr))
    element = parts[0] if len(parts) == 1 else tuple(parts)
    ds = tf.data.Dataset.from_tensor_slices(element)
    return finish(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        preprocess=preprocess,
        cache=cache,
        buffer_size=max(n, 1),
    )


def _check_lengths(n: int, y: Any, sample_weight: Any) -> None:
    for name, arr in (("y", y), ("sample_weight", sample_weight)):
        if arr is not None and len(arr) != n:
            raise ValueError(
                f"Expected {name} to have as many rows as x ({n}). "
                f"Received: len({name})={len(arr)}"
            )
    if sample_weight is not None and y is None:
        raise ValueError("sample_weight needs y: unlabelled data cannot be weighted.")


def from_tfds(
    name: str,
    *,
    split: str = "train",
    data_dir: str | None = None,
    download: bool = False,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int = 0,
    preprocess: Any = None,
    cache: bool = True,
    as_supervised: bool = True,
) -> tf.data.Dataset:
    """Loads a TensorFlow Datasets dataset by name, batched and prefetched.

    Args:
        name: str. A TFDS name, e.g. `"mnist"` or `"cifar10:3.0.2"`.
        split: str. Defaults to `"train"`.
        data_dir: str or None. Where prepared data lives (TFDS default otherwise).
        download: bool. Download and prepare when missing. Defaults to False, so an
            offline machine fails at once with a clear message instead of hanging.
        batch_size, shuffle, seed, preprocess, cache: as in `from_arrays`.
        as_supervised: bool. Yield `(x, y)` pairs. Defaults to True.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        ValueError: the dataset is unknown, or not prepared in `data_dir` and
            `download=False` (or the download failed).
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:
        raise ValueError(
            f"Unknown TFDS dataset {name!r} ({type(e).__name__}: {e}). Prepared data "
            "can also be read from data_dir=... ."
        ) from e
    prepared = tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))
    if not prepared:
        if not download:
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir!r}. Pass "
                "download=True to download and prepare it (needs network access), or "
                "data_dir=... pointing at a directory where it was prepared."
            )
        try:
            builder.download_and_prepare()
        except Exception as e:
            raise ValueError(
                f"Could not download TFDS dataset {name!r} into {builder.data_dir!r} "
                f"({type(e).__name__}: {e}). Offline? Prepare it on a connected "
                "machine and copy the directory, then pass data_dir=... ."
            ) from e
    ds = builder.as_dataset(split=split, as_supervised=as_supervised)
    return finish(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        preprocess=preprocess,
        cache=cache,
    )


def refuse_infinite(data: Any, role: str, consumer: str) -> None:
    """Raises a ValueError for an infinite `tf.data.Dataset` (``repeat()``).

    `fine_tune` trains whole epochs and `adapt` reads its data once into a fixed
    order: either would loop forever on a dataset without an end.

    Args:
        data: anything; only a `tf.data.Dataset` is checked.
        role: str. Which argument, for the message (``"train"``, ``"source"``).
        consumer: str. The function's name, for the message.

    Examples:
    ```python
    import numpy as np
    import tensorflow as tf
    from keras_transfer.data.pipelines import refuse_infinite
    ds = tf.data.Dataset.from_tensor_slices(np.zeros((4, 2))).batch(2)
    refuse_infinite(ds, "train", "fine_tune")  # finite: fine
    try:
        refuse_infinite(ds.repeat(), "train", "fine_tune")
    except ValueError as e:
        assert "repeat()" in str(e)
    ```
    """
    if (
        isinstance(data, tf.data.Dataset)
        and data.cardinality() == tf.data.INFINITE_CARDINALITY
    ):
        raise ValueError(
            f"Expected a finite dataset as {role}: {consumer} goes through it "
            "epoch by epoch (each epoch is one pass), so an infinite one "
            "(repeat() without a count) would never end. Drop the repeat(), or "
            "use take(n) for a fixed number of batches. Received: an infinite "
            f"{type(data).__name__}"
        )

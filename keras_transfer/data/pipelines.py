"""tf.data helpers: datasets from numpy arrays, image folders and TFDS names."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf


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
        x: np.ndarray, dict of arrays, or `folders.ImageFiles` (streamed from
            disk with parallel decoding; `cache` does not apply). Inputs.
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
    from keras_transfer.data.folders import ImageFiles

    if isinstance(x, ImageFiles):  # a folder too large for memory: stream it
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
            dtype="uint8",
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


def from_directory(
    directory: str,
    *,
    image_size: tuple[int, int] = (224, 224),
    batch_size: int = 32,
    validation_split: float | None = None,
    subset: str | None = None,
    shuffle: bool = True,
    seed: int = 0,
    preprocess: Any = None,
    cache: bool | str = "auto",
    skip_corrupt: bool = False,
    **kwargs: Any,
) -> Any:
    """Builds an image dataset from `directory/<class name>/<image files>`.

    Files are listed once, then read and decoded by `tf.data` in parallel and
    prefetched, so a folder of any size streams (what
    `keras.utils.image_dataset_from_directory` yields: integer labels, images as
    float32 in [0, 255], bilinear resizing, a `class_names` attribute). The
    validation split is stratified: every class keeps its share.

    Args:
        directory: str. Root folder with one subfolder per class.
        image_size: tuple. Images are resized to this. Defaults to (224, 224).
        batch_size: int. Defaults to 32.
        validation_split: float or None. Fraction held out for validation.
        subset: str or None. `"training"`, `"validation"` or `"both"` (returns a
            pair) when `validation_split` is set.
        shuffle: bool. Reshuffle the training data each epoch. Defaults to True.
        seed: int. Split and shuffle seed. Defaults to 0.
        preprocess: callable or None. Applied to batched images.
        cache: bool or str. True keeps the decoded images in memory after the
            first epoch, a str path caches them in files there, False decodes every
            epoch, `"auto"` caches in memory when the decoded images fit in
            `CACHE_BYTES` (1 GiB) and streams otherwise. Defaults to `"auto"`.
        skip_corrupt: bool. Drop files that cannot be decoded (a warning is logged)
            instead of failing. Defaults to False.
        **kwargs: `label_mode` (`"int"`, `"categorical"`, `"binary"` or None),
            `class_names`, `color_mode` (`"rgb"`, `"grayscale"`, `"rgba"`),
            `interpolation`. Any other `image_dataset_from_directory` argument
            switches to Keras' reader.

    Returns:
        A dataset (or a pair for `subset="both"`) with a `class_names` attribute.

    Raises:
        ValueError: the directory is missing or holds no class folders, or a bad
            `subset`, `validation_split`, `label_mode` or `color_mode`.

    Examples:
    ```python
    import os, tempfile
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.data import from_directory
    root = tempfile.mkdtemp()
    for name in ("cat", "dog"):
        os.makedirs(f"{root}/{name}")
        for i in range(4):
            img = np.full((40, 30, 3), 50 * i, "uint8")
            keras.utils.save_img(f"{root}/{name}/{i}.png", img)
    train, val = from_directory(root, image_size=(32, 32), batch_size=2,
                                validation_split=0.25, subset="both")
    assert train.class_names == ["cat", "dog"]
    assert sum(int(x.shape[0]) for x, _ in val) == 2  # one per class
    ```
    """
    from keras_transfer.data import folders

    own = {"label_mode", "class_names", "color_mode", "interpolation"}
    if set(kwargs) - own:
        return _keras_directory(
            directory,
            image_size=image_size,
            batch_size=batch_size,
            validation_split=validation_split,
            subset=subset,
            shuffle=shuffle,
            seed=seed,
            preprocess=preprocess,
            cache=cache,
            **kwargs,
        )
    _check_batch_size(batch_size)
    label_mode = kwargs.get("label_mode", "int")
    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}.get(
        kwargs.get("color_mode", "rgb")
    )
    if channels is None:
        raise ValueError(
            "Expected color_mode to be 'rgb', 'grayscale' or 'rgba'. Received: "
            f"color_mode={kwargs['color_mode']!r}"
        )
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(
            "Expected label_mode to be 'int', 'categorical', 'binary' or None. "
            f"Received: label_mode={label_mode!r}"
        )
    paths, labels, names = folders.list_image_files(
        directory, kwargs.get("class_names")
    )
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(
            f"Expected 2 class folders for label_mode='binary'. Received: {names!r}"
        )
    if not len(paths):
        raise ValueError(
            f"No images ({', '.join(folders.IMAGE_EXTS)}) found under {directory!r}."
        )
    subsets = _subsets(validation_split, subset)
    if validation_split:
        train_idx, val_idx = folders.stratified_split(labels, validation_split, seed)
        index = {"training": train_idx, "validation": val_idx}
    else:
        index = {None: np.random.default_rng(seed).permutation(len(paths))}
    files = folders.ImageFiles(
        paths,
        tuple(image_size),
        channels=channels,
        interpolation=kwargs.get("interpolation", "bilinear"),
        skip_corrupt=skip_corrupt,
    )
    finished = []
    for name in subsets:
        part = np.sort(index[name]) if not shuffle else index[name]
        ds = _files_pipeline(
            files[part],
            _encode_labels(labels[part], label_mode, len(names)),
            batch_size=batch_size,
            shuffle=shuffle and name != "validation",
            seed=seed,
            preprocess=preprocess,
            # One cache file per subset: a shared prefix would mix them.
            cache=_cache_name(cache, name),
        )
        ds.class_names = names
        finished.append(ds)
    return tuple(finished) if len(finished) > 1 else finished[0]


CACHE_BYTES = 1 << 30


def _cache_name(cache: bool | str, subset: str | None) -> bool | str:
    """One cache file per subset: a shared file name would mix them."""
    if isinstance(cache, str) and cache != "auto" and subset:
        return f"{cache}-{subset}"
    return cache


def _subsets(validation_split: float | None, subset: str | None) -> list:
    if not validation_split:
        if subset is not None:
            raise ValueError(
                f"subset={subset!r} needs validation_split. Received: "
                f"validation_split={validation_split!r}"
            )
        return [None]
    if subset not in ("training", "validation", "both"):
        raise ValueError(
            "Expected subset to be 'training', 'validation' or 'both' when "
            f"validation_split is set. Received: subset={subset!r}"
        )
    return ["training", "validation"] if subset == "both" else [subset]


def _encode_labels(labels: np.ndarray, label_mode: str | None, n: int) -> Any:
    if label_mode is None:
        return None
    if label_mode == "categorical":
        return np.eye(n, dtype="float32")[labels]
    if label_mode == "binary":
        return labels.astype("float32")[:, None]
    return labels


def _files_pipeline(
    files: Any,
    labels: Any,
    *,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
    preprocess: Any,
    cache: bool | str,
    dtype: str = "float32",
    sample_weight: Any = None,
) -> tf.data.Dataset:
    """Streams `ImageFiles`: decode in parallel, optional cache, batch, prefetch."""
    from keras_transfer.data.folders import files_dataset

    others = [a for a in (labels, sample_weight) if a is not None]
    nbytes = files.nbytes * (4 if dtype == "float32" else 1)
    if cache == "auto":
        cache = nbytes <= CACHE_BYTES
    if not cache:
        ds = files_dataset(files, *others, shuffle=shuffle, seed=seed, dtype=dtype)
        return finish(
            ds,
            batch_size=batch_size,
            shuffle=False,
            seed=seed,
            preprocess=preprocess,
            cache=False,
        )
    # Decode once in a seeded random order, cache, then reshuffle a window of
    # decoded images each epoch (the file order is already random).
    order = np.random.default_rng(seed).permutation(len(files)) if shuffle else None
    if order is not None:
        files = files[order]
        others = [np.asarray(a)[order] for a in others]
    ds = files_dataset(files, *others, shuffle=False, seed=seed, dtype=dtype)
    ds = ds.cache(cache) if isinstance(cache, str) else ds.cache()
    return finish(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        preprocess=preprocess,
        cache=False,
        buffer_size=min(max(len(files), 1), 8 * (batch_size or 32)),
    )


def _keras_directory(directory: str, *, cache: bool | str, preprocess: Any, **kw):
    """`keras.utils.image_dataset_from_directory` plus cache/preprocess/prefetch."""
    if not os.path.isdir(directory):
        raise ValueError(
            f"Image folder {directory!r} does not exist. Expected a directory with one "
            "subfolder of images per class."
        )
    result = keras.utils.image_dataset_from_directory(
        directory, **{**kw, "image_size": tuple(kw["image_size"])}
    )
    datasets = result if isinstance(result, list | tuple) else [result]
    finished = []
    subsets = ["training", "validation"] if len(datasets) > 1 else [None]
    for ds, subset in zip(datasets, subsets):
        names = ds.class_names
        out = ds
        cache = _cache_name(cache, subset)
        if cache == "auto":
            h, w = kw["image_size"]
            cache = len(ds.file_paths) * h * w * 3 * 4 <= CACHE_BYTES
        if cache:
            out = ds.cache(cache) if isinstance(cache, str) else ds.cache()
        if preprocess is not None:
            out = out.map(
                lambda x, *y: (preprocess(x), *y), num_parallel_calls=tf.data.AUTOTUNE
            )
        out = out.prefetch(tf.data.AUTOTUNE)
        out.class_names = names
        finished.append(out)
    return tuple(finished) if len(finished) > 1 else finished[0]


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

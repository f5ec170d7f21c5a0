"""`from_directory`: a class-per-folder image dataset, streamed with parallel decode.

Files are listed once (`folders.list_image_files`), split by class
(`folders.stratified_split`), then read and decoded by `tf.data` in parallel; decoded
images are cached in memory only when they fit `CACHE_BYTES`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.data.pipelines import _check_batch_size, finish


def from_directory(
    directory: str,
    *,
    image_size: tuple[int, int] = (224, 224),
    batch_size: int | None = 32,
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
        batch_size: int or None (unbatched). Defaults to 32.
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
        **kwargs: `label_mode` (`"int"`, `"categorical"`, `"binary"` or None:
            images only, read from every image under `directory` at any depth, so
            a flat folder of unlabelled photos works, e.g. an `adapt` target),
            `class_names`, `color_mode` (`"rgb"`, `"grayscale"`, `"rgba"`),
            `interpolation`. Any other `image_dataset_from_directory` argument
            switches to Keras' reader.

    Returns:
        A dataset (or a pair for `subset="both"`) with a `class_names` attribute.

    Raises:
        ValueError: the directory is missing or holds no class folders, a bad
            `subset`, `validation_split`, `label_mode` or `color_mode`, or (without
            ``skip_corrupt``) a file whose first bytes are not a JPEG, PNG, GIF or
            BMP image's (named now, not in the middle of training; a file with a
            valid header but damaged data fails when it is decoded).

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
    from keras_transfer.data.files import screen_headers

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
    if batch_size is not None:  # None: unbatched, as in Keras
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
    if label_mode is None and kwargs.get("class_names") is None:
        # images only (e.g. an unlabelled target domain): no class folders needed,
        # as with Keras' labels=None
        paths = folders.list_all_image_files(directory)
        labels, names = np.zeros(len(paths), "int32"), []
    else:
        paths, labels, names = folders.list_image_files(
            directory, kwargs.get("class_names")
        )
    paths, labels = screen_headers(paths, labels, directory, skip_corrupt)
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
        own = _cache_name(cache, subset)
        if own == "auto":
            h, w = kw["image_size"]
            own = len(ds.file_paths) * h * w * 3 * 4 <= CACHE_BYTES
        if own:
            out = ds.cache(own) if isinstance(own, str) else ds.cache()
        if preprocess is not None:
            out = out.map(
                lambda x, *y: (preprocess(x), *y), num_parallel_calls=tf.data.AUTOTUNE
            )
        out = out.prefetch(tf.data.AUTOTUNE)
        out.class_names = names
        finished.append(out)
    return tuple(finished) if len(finished) > 1 else finished[0]

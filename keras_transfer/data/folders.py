"""Image folders read with one decoder: listing, stratified splits, lazy `ImageFiles`.

`from_directory` and the CLI's folder reader share what is here, so training,
evaluation, prediction and export calibration see the same pixels: files are read and
decoded by `tf.data` in parallel (`decode_files` for arrays, `files_dataset` to
stream), and `ImageFiles` stands for a folder too large to hold in memory (an
array-like that decodes only what is read).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer._backend import tf
from keras_transfer.data.lazy import LazyArray

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# What `tf.io.decode_image` recognises: JPEG, PNG, GIF, BMP.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos3", "lanczos5")


def list_image_files(
    directory: str | os.PathLike, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Lists `directory/<class name>/**/<image file>` in a fixed (sorted) order.

    Args:
        directory: str. Root folder with one subfolder per class.
        class_names: list of str or None. The class folders to read, in label
            order. Defaults to None (every subfolder, sorted by name).

    Returns:
        `(paths, labels, class_names)`: a str array, an int32 array, a list.

    Raises:
        ValueError: a missing directory, no class subfolders, or a listed class
            without a folder.

    Examples:
    ```python
    import tempfile
    from pathlib import Path
    from keras_transfer.data.folders import list_image_files
    root = Path(tempfile.mkdtemp())
    (root / "b").mkdir(); (root / "a").mkdir(); (root / "a" / "1.png").touch()
    paths, labels, names = list_image_files(root)
    assert names == ["a", "b"] and labels.tolist() == [0]
    ```
    """
    directory = str(directory)
    if not os.path.isdir(directory):
        raise ValueError(
            f"Image folder {directory!r} does not exist. Expected a directory with one "
            "subfolder of images per class."
        )
    found = sorted(d.name for d in os.scandir(directory) if d.is_dir())
    names = list(class_names) if class_names is not None else found
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(
            f"Expected class_names to be subfolders of {directory!r}. Received: "
            f"class_names={names!r} (no folder for {missing!r})"
        )
    if not names:
        raise ValueError(
            f"Image folder {directory!r} has no class subfolders. Expected "
            "<directory>/<class name>/<image files>."
        )
    paths, labels = [], []
    for label, name in enumerate(names):
        for file in sorted(Path(directory, name).rglob("*")):
            if file.suffix.lower() in IMAGE_EXTS and file.is_file():
                paths.append(str(file))
                labels.append(label)
    return np.asarray(paths, dtype=str), np.asarray(labels, "int32"), names


def list_all_image_files(directory: str | os.PathLike) -> np.ndarray:
    """Every image file under `directory` at any depth, sorted (unlabelled images,
    `from_directory(..., label_mode=None)`: no class sub-folders needed)."""
    if not os.path.isdir(directory):
        raise ValueError(f"Image folder {str(directory)!r} does not exist.")
    files = (f for f in Path(directory).rglob("*") if f.is_file())
    images = sorted(str(f) for f in files if f.suffix.lower() in IMAGE_EXTS)
    return np.asarray(images, dtype=str)


def unreadable_headers(paths: Sequence[str]) -> list[int]:
    """Indexes of files that are not JPEG, PNG, GIF or BMP by their first bytes.

    Cheap (a few bytes per file), so a folder of any size is checked before
    training starts; a file with a valid header but damaged data is found only
    when it is decoded.
    """
    bad = []
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError:
            bad.append(i)
            continue
        if not head.startswith(_SIGNATURES):
            bad.append(i)
    return bad


def check_interpolation(interpolation: str) -> None:
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"Expected interpolation to be one of {_INTERPOLATIONS}. "
            f"Received: interpolation={interpolation!r}"
        )


def decode(
    path: Any,
    image_size: tuple[int, int],
    *,
    channels: int = 3,
    interpolation: str = "nearest",
    dtype: str = "uint8",
) -> Any:
    """Reads and decodes one image file (a string tensor) to `image_size`.

    Args:
        path: str or string tensor.
        image_size: `(height, width)`.
        channels: int. 1, 3 or 4. Defaults to 3 (grayscale is repeated, alpha
            dropped).
        interpolation: str. A `tf.image.resize` method. Defaults to `"nearest"`.
        dtype: str. `"uint8"` (rounded) or `"float32"` (values in [0, 255]).

    Returns:
        A `(height, width, channels)` tensor.
    """
    raw = tf.io.read_file(path)
    # JPEG with the accurate integer DCT, as PIL (and so keras.utils.load_img).
    image = tf.cond(
        tf.io.is_jpeg(raw),
        lambda: tf.io.decode_jpeg(
            raw, channels=channels, dct_method="INTEGER_ACCURATE"
        ),
        lambda: tf.io.decode_image(
            raw, channels=channels, dtype=tf.uint8, expand_animations=False
        ),
    )
    image.set_shape([None, None, channels])
    size = tf.constant(image_size, tf.int32)
    same = tf.reduce_all(tf.shape(image)[:2] == size)
    image = tf.cond(
        same,
        lambda: tf.cast(image, tf.float32),
        lambda: tf.cast(tf.image.resize(image, size, method=interpolation), tf.float32),
    )
    image.set_shape([*image_size, channels])
    if dtype == "uint8":
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Holds out `round(n * fraction)` examples, shared by class, shuffled with `seed`.

    Args:
        labels: 1-D int array (another shape: not stratified).
        fraction: float in [0, 1).
        seed: int.

    Returns:
        `(train_index, val_index)`, each in a seeded random order.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.data.folders import stratified_split
    train, val = stratified_split(np.repeat([0, 1], [4, 8]), 0.25, seed=0)
    assert len(val) == 3 and len(train) == 9
    ```
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"Expected validation_split in [0, 1). Received: validation_split={fraction}"
        )
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if labels.ndim != 1:  # multi-label or one-hot: no single class to stratify on
        labels = np.zeros(len(labels), "int64")
    classes, counts = np.unique(labels, return_counts=True)
    # round(n * fraction) held out in all, shared by class (largest remainder).
    quotas = counts * fraction
    n_val = np.floor(quotas).astype(int)
    extra = int(round(len(labels) * fraction)) - int(n_val.sum())
    if extra > 0:
        n_val[np.argsort(-(quotas - n_val), kind="stable")[:extra]] += 1
    val, train = [np.zeros(0, "int64")], [np.zeros(0, "int64")]
    for label, k in zip(classes, n_val):
        members = rng.permutation(np.flatnonzero(labels == label))
        val.append(members[:k])
        train.append(members[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def decode_files(
    paths: Sequence[str],
    image_size: tuple[int, int],
    *,
    channels: int = 3,
    interpolation: str = "nearest",
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Decodes files in parallel into one uint8 array; failures are reported.

    Args:
        paths: file paths.
        image_size: `(height, width)`.
        channels: int. Defaults to 3.
        interpolation: str. Defaults to `"nearest"`.
        on_batch: callable or None. Called with the number of files just done.

    Returns:
        `(images, failed)`: the decoded images in file order (the failed ones
        left out) and the indexes of the files that could not be decoded.
    """
    n = len(paths)
    out = np.zeros((n, *image_size, channels), "uint8")
    done = np.zeros(n, bool)
    if n:
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(paths, str), np.arange(n)))
        ds = ds.map(
            lambda p, i: (
                decode(p, image_size, channels=channels, interpolation=interpolation),
                i,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        ds = ds.ignore_errors().batch(256).prefetch(2)
        for images, index in ds.as_numpy_iterator():
            out[index] = images
            done[index] = True
            if on_batch is not None:
                on_batch(len(index))
    failed = np.flatnonzero(~done).tolist()
    return (out if not failed else out[done]), failed


class ImageFiles(LazyArray):
    """Image files that behave like a uint8 array `(n, height, width, channels)`.

    Nothing is decoded until read: `len`, `shape`, slicing and index arrays are
    free (they return `ImageFiles`); an int index decodes one image;
    `np.asarray(files)` (and so `model.predict(files)`, `np.concatenate`)
    decodes all of them; `keras_transfer.data.from_arrays(files, y)` streams them
    with parallel decoding and prefetch.

    Args:
        paths: file paths.
        image_size: `(height, width)`.
        channels: int. Defaults to 3.
        interpolation: str. Defaults to `"nearest"`.
        skip_corrupt: bool. When streaming, drop files that fail to decode (with a
            warning) instead of stopping. Defaults to False.

    Examples:
    ```python
    import tempfile
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.data.folders import ImageFiles
    path = tempfile.mkdtemp() + "/a.png"
    keras.utils.save_img(path, np.zeros((20, 20, 3), "uint8"))
    files = ImageFiles([path, path], (8, 8))
    assert files.shape == (2, 8, 8, 3) and np.asarray(files[:1]).shape == (1, 8, 8, 3)
    ```
    """

    dtype = np.dtype("uint8")
    ndim = 4

    def __init__(
        self,
        paths: Sequence[str],
        image_size: tuple[int, int],
        *,
        channels: int = 3,
        interpolation: str = "nearest",
        skip_corrupt: bool = False,
    ) -> None:
        check_interpolation(interpolation)
        self.paths = np.asarray(paths, dtype=str).reshape(-1)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.channels = int(channels)
        self.interpolation = interpolation
        self.skip_corrupt = bool(skip_corrupt)

    def _like(self, paths: np.ndarray) -> ImageFiles:
        return ImageFiles(
            paths,
            self.image_size,
            channels=self.channels,
            interpolation=self.interpolation,
            skip_corrupt=self.skip_corrupt,
        )

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), *self.image_size, self.channels)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageFiles(shape={self.shape}, interpolation={self.interpolation!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        images, failed = decode_files(
            self.paths,
            self.image_size,
            channels=self.channels,
            interpolation=self.interpolation,
        )
        if failed:
            names = ", ".join(repr(str(self.paths[i])) for i in failed[:5])
            raise ValueError(
                f"Cannot decode {len(failed)} image file(s): {names}. Remove or "
                "replace them (they pass the header check but their data is damaged)."
            )
        return images if dtype is None else images.astype(dtype)

    def _take(self, index: np.ndarray) -> ImageFiles:
        return self._like(self.paths[index])

    def dataset(
        self, *others: Any, shuffle: bool, seed: int, dtype: str | None = None
    ) -> Any:
        """The images decoded in parallel as they stream (see `files_dataset`)."""
        return files_dataset(
            self, *others, shuffle=shuffle, seed=seed, dtype=dtype or "uint8"
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Any]) -> Any:
        """Joins `ImageFiles` of one size lazily; anything else as `np.concatenate`."""
        first = parts[0]
        if all(
            isinstance(p, ImageFiles)
            and (p.image_size, p.channels, p.interpolation)
            == (first.image_size, first.channels, first.interpolation)
            for p in parts
        ):
            return first._like(np.concatenate([p.paths for p in parts]))
        return np.concatenate([np.asarray(p) for p in parts])


def files_dataset(
    files: LazyArray,
    *others: Any,
    shuffle: bool,
    seed: int,
    dtype: str | None = None,
) -> Any:
    """An unbatched `tf.data.Dataset` decoding `files` in parallel (with `others`).

    The file names (not the images) are shuffled, with a buffer of the whole list,
    so shuffling costs no memory; corrupt files stop iteration unless
    `files.skip_corrupt` (then they are dropped with a logged warning). Images
    come in `dtype` (default uint8). Any other `LazyArray` streams through its
    own `dataset` (in its own dtype unless `dtype` is given).
    """
    if not isinstance(files, ImageFiles):  # another lazy array streams its own way
        return files.dataset(*others, shuffle=shuffle, seed=seed, dtype=dtype)
    dtype = dtype or "uint8"
    element = (files.paths, *others)
    ds = tf.data.Dataset.from_tensor_slices(element)
    if shuffle:
        ds = ds.shuffle(max(len(files), 1), seed=seed, reshuffle_each_iteration=True)
    size, channels, method = files.image_size, files.channels, files.interpolation

    def load(path: Any, *rest: Any) -> Any:
        image = decode(path, size, channels=channels, interpolation=method, dtype=dtype)
        return (image, *rest) if rest else image

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if files.skip_corrupt:
        logging.getLogger("keras_transfer").info(
            "streaming %d image files; files that fail to decode are skipped",
            len(files),
        )
        ds = ds.ignore_errors(log_warning=True)
    return ds

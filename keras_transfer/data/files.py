"""`image_files`: an image folder as a lazy array, for data too large for memory.

`keras_transfer.adapt` (and `from_arrays`, `domain_pairs`) take the `ImageFiles`
it returns wherever they take an array of images, and decode them batch by batch
as they stream: a folder of any size trains without being read into memory.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from keras_transfer.data import folders
from keras_transfer.data.lazy import LazyArray

_CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}


def lazy_asarray(x: Any, dtype: Any = None) -> Any:
    """``np.asarray(x, dtype)``, except that lazy arrays (`ImageFiles`,
    `SpilledArray`) stay lazy (nothing read)."""
    return x if isinstance(x, LazyArray) else np.asarray(x, dtype)


def labelled_data(x: Any, y: Any, batch_size: int, dtype: Any = None) -> Any:
    """``(x, y)`` as `Model.evaluate` and ``validation_data`` take it: arrays
    (``x`` in ``dtype``, labels int32), or for `ImageFiles` an unshuffled batched
    float32 dataset of both that decodes the images as it goes."""
    from keras_transfer._backend import tf

    y = np.asarray(y, "int32")
    if not isinstance(x, LazyArray):
        return np.asarray(x, dtype), y
    data = folders.files_dataset(x, y, shuffle=False, seed=0, dtype="float32")
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def image_files(
    directory: str | os.PathLike,
    image_size: tuple[int, int],
    *,
    labels: str | None = "inferred",
    class_names: list[str] | None = None,
    color_mode: str = "rgb",
    interpolation: str = "bilinear",
    skip_corrupt: bool = False,
) -> Any:
    """An image folder as a lazy uint8 array `(n, height, width, channels)`.

    Nothing is decoded here: the files are listed (sorted) and each file's first
    bytes are checked, so a file that is not a JPEG, PNG, GIF or BMP image is
    named now rather than in the middle of training. The result is a
    `keras_transfer.data.folders.ImageFiles`: slicing and index arrays are free,
    `np.asarray` decodes everything, and `keras_transfer.adapt`, `from_arrays`
    and `domain_pairs` stream it (parallel decode, prefetch), decoding one batch
    at a time. Images are decoded and resized as `from_directory` does, then
    rounded to uint8 (the default interpolation, bilinear, makes fractional
    values; ``interpolation="nearest"`` keeps the files' own pixel values).

    Args:
        directory: str or path. With ``labels="inferred"``, one subfolder of images
            per class (``directory/<class>/**/<image>``); with ``labels=None``,
            every image under ``directory`` at any depth.
        image_size: tuple ``(height, width)``. Every image is resized to it.
        labels: ``"inferred"`` (from the subfolders) or None (unlabelled inputs,
            e.g. an adaptation target). Defaults to ``"inferred"``.
        class_names: list of str or None. The class folders to read, in label
            order. Defaults to None (every subfolder, sorted by name).
        color_mode: ``"rgb"``, ``"grayscale"`` or ``"rgba"``. Defaults to ``"rgb"``.
        interpolation: str. Resize method, as `tf.image.resize`. Defaults to
            ``"bilinear"``.
        skip_corrupt: bool. Drop files whose header is not an image's now (with a
            warning), and files whose data fails to decode when streamed, instead
            of raising. Defaults to False.

    Returns:
        ``(files, labels, class_names)`` (an `ImageFiles`, an int32 array, a list)
        with ``labels="inferred"``; the `ImageFiles` alone with ``labels=None``.

    Raises:
        ValueError: a missing folder, no class subfolders, no images, a bad
            ``labels``, ``color_mode`` or ``interpolation``, or (without
            ``skip_corrupt``) a file that is not an image.

    Examples:
    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.data import image_files
    root = Path(tempfile.mkdtemp())
    for name in ("cat", "dog"):
        (root / name).mkdir()
        keras.utils.save_img(root / name / "1.png", np.zeros((20, 20, 3), "uint8"))
    x, y, names = image_files(root, (8, 8))
    assert x.shape == (2, 8, 8, 3) and y.tolist() == [0, 1] and names == ["cat", "dog"]
    assert np.asarray(x[:1]).shape == (1, 8, 8, 3)  # decodes one image
    ```
    """
    if labels not in ("inferred", None):
        raise ValueError(
            "Expected labels to be 'inferred' (one subfolder per class) or None "
            f"(unlabelled images). Received: labels={labels!r}"
        )
    if color_mode not in _CHANNELS:
        raise ValueError(
            f"Expected color_mode to be one of {sorted(_CHANNELS)}. Received: "
            f"color_mode={color_mode!r}"
        )
    folders.check_interpolation(interpolation)
    if labels is None:
        paths = folders.list_all_image_files(directory)
        y = np.zeros(len(paths), "int32")
        names: list[str] = []
    else:
        paths, y, names = folders.list_image_files(directory, class_names)
    paths, y = screen_headers(paths, y, directory, skip_corrupt)
    if not len(paths):
        raise ValueError(
            f"No images ({', '.join(folders.IMAGE_EXTS)}) found under "
            f"{str(directory)!r}."
        )
    files = folders.ImageFiles(
        paths,
        tuple(image_size),
        channels=_CHANNELS[color_mode],
        interpolation=interpolation,
        skip_corrupt=skip_corrupt,
    )
    return files if labels is None else (files, y, names)


__all__ = ["image_files"]


def screen_headers(
    paths: np.ndarray, labels: np.ndarray, directory: Any, skip_corrupt: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Refuses (or, with ``skip_corrupt``, drops with a warning) the files whose
    first bytes are not a JPEG, PNG, GIF or BMP image's, naming the first one."""
    bad = folders.unreadable_headers(paths)
    if bad and not skip_corrupt:
        raise ValueError(
            f"Cannot read image file {str(paths[bad[0]])!r}: not a JPEG, PNG, GIF or "
            f"BMP image ({len(bad)} such file(s) under {str(directory)!r}). Remove "
            "them, or pass skip_corrupt=True to skip them."
        )
    if bad:
        logging.getLogger("keras_transfer").warning(
            "skipped %d files that are not images under %s: %s",
            len(bad),
            directory,
            ", ".join(str(paths[i]) for i in bad[:10]),
        )
        keep = np.setdiff1d(np.arange(len(paths)), bad)
        paths, labels = paths[keep], labels[keep]
    return paths, labels

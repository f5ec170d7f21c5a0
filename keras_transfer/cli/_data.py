"""Data sources of the config files: built-in digits domains, image folders, .npz.

`inspect_source` is cheap (no TensorFlow): it checks that a source exists and returns
its class names, so a bad config fails before any run directory or model exists.
`load_labelled` then reads the examples into numpy arrays (fine for the small and
mid-sized datasets the CLI targets; use `keras_transfer.data` for streaming).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_transfer.config import ConfigError, DataConfig

BUILTIN = ("digits", "digits_target")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class LabelledData:
    """Arrays of one labelled source: train and validation splits plus class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]


def _kind(source: str, field: str) -> str:
    if source in BUILTIN:
        return "builtin"
    if not source:
        raise ConfigError(
            f"Missing data path: {field} is empty. Accepted: {', '.join(BUILTIN)}, "
            "a folder of images or a .npz file."
        )
    if not os.path.exists(source):
        raise ConfigError(
            f"Data path not found: {field}={source!r}. Accepted: "
            f"{', '.join(BUILTIN)}, an existing folder of images (one sub-folder per "
            "class) or an existing .npz file."
        )
    if os.path.isdir(source):
        return "folder"
    if source.endswith(".npz"):
        return "npz"
    raise ConfigError(
        f"Unsupported data source {field}={source!r}: expected a folder or a .npz file."
    )


def _folder_classes(path: str, field: str) -> list[str]:
    classes = sorted(d.name for d in os.scandir(path) if d.is_dir())
    if not classes:
        raise ConfigError(
            f"No class sub-folders in {field}={path!r}. "
            "Expected <folder>/<class>/<image>."
        )
    return classes


def inspect_source(source: str, field: str = "data.source") -> list[str]:
    """Checks a data source exists and returns its class names (no TensorFlow).

    Raises:
        ConfigError: the path is empty or missing, or holds no classes / labels.
    """
    kind = _kind(source, field)
    if kind == "builtin":
        return [str(i) for i in range(10)]
    if kind == "folder":
        return _folder_classes(source, field)
    with np.load(source, allow_pickle=False) as npz:
        if "class_names" in npz:
            return [str(c) for c in npz["class_names"]]
        keys = [k for k in ("y", "y_train", "y_test") if k in npz]
        if not keys:
            raise ConfigError(
                f"{field}={source!r} has no labels: expected arrays 'y' or 'y_train' "
                f"(found {sorted(npz.files)})."
            )
        top = max(int(np.max(npz[k])) for k in keys if npz[k].size)
        return [str(i) for i in range(top + 1)]


def check_num_classes(
    num_classes: int | None, class_names: list[str], field: str
) -> int:
    """Returns the number of classes, raising if the config disagrees with the data."""
    if num_classes is not None and num_classes != len(class_names):
        raise ConfigError(
            f"model.num_classes={num_classes} does not match the data: {field} has "
            f"{len(class_names)} classes ({', '.join(class_names[:12])}"
            f"{'...' if len(class_names) > 12 else ''}). Set model.num_classes to "
            f"{len(class_names)} or null (inferred)."
        )
    return len(class_names)


def _builtin(source: str, size: int, seed: int):
    from keras_transfer.datasets import digits_domains

    src, tgt = digits_domains(size=size, seed=seed)
    return src if source == "digits" else tgt


def _read_folder(path: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from keras_transfer._backend import keras
    from keras_transfer.progress import Progress

    classes = _folder_classes(path, "data.source")
    files = [
        (label, file)
        for label, name in enumerate(classes)
        for file in sorted(Path(path, name).rglob("*"))
        if file.suffix.lower() in IMAGE_EXTS
    ]
    xs, ys = [], []
    with Progress(len(files), f"reading {path}", min_interval=2.0) as bar:
        for label, file in files:
            img = keras.utils.load_img(file, target_size=(size, size))
            xs.append(np.asarray(img, dtype="uint8"))
            ys.append(label)
            bar.update()
    if not xs:
        raise ConfigError(f"No images ({', '.join(IMAGE_EXTS)}) found under {path!r}.")
    return np.stack(xs), np.asarray(ys, "int32"), classes


def read_images(path: str, size: int) -> tuple[np.ndarray, list[str]]:
    """Reads one image file or every image under a folder; returns (x, file names)."""
    from keras_transfer._backend import keras

    p = Path(path)
    files = (
        [p]
        if p.is_file()
        else sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
    )
    if not files:
        raise ConfigError(f"No images found at inputs={path!r}.")
    x = np.stack(
        [
            np.asarray(keras.utils.load_img(f, target_size=(size, size)), "uint8")
            for f in files
        ]
    )
    return x, [str(f) for f in files]


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(
            f"Expected data.validation_split in [0, 1). Received: {fraction}"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _read(source: str, cfg: DataConfig):
    """Returns (x_train, y_train, x_val, y_val, class_names) of one source."""
    kind = _kind(source, "data.source")
    names = inspect_source(source)
    if kind == "builtin":
        split = _builtin(source, cfg.image_size, cfg.seed)
        return split.x_train, split.y_train, split.x_test, split.y_test, names
    if kind == "folder":
        x, y, names = _read_folder(source, cfg.image_size)
        return (*_split(x, y, cfg.validation_split, cfg.seed), names)
    with np.load(source, allow_pickle=False) as npz:
        if "x_train" in npz:
            return npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"], names
        if "x" not in npz or "y" not in npz:
            raise ConfigError(
                f"{source!r} needs arrays x and y (or x_train, y_train, x_test, "
                f"y_test). Found: {sorted(npz.files)}"
            )
        return (*_split(npz["x"], npz["y"], cfg.validation_split, cfg.seed), names)


def check_data_config(cfg: DataConfig, prefix: str = "data") -> None:
    """Checks the numeric fields of a `DataConfig` (no data is read).

    Raises:
        ConfigError: a field out of range, named with `prefix`.
    """
    rules = (
        ("image_size", cfg.image_size >= 8, "an int >= 8"),
        ("batch_size", cfg.batch_size >= 1, "an int >= 1"),
        ("validation_split", 0.0 <= cfg.validation_split < 1.0, "a float in [0, 1)"),
        ("limit", cfg.limit is None or cfg.limit >= 1, "an int >= 1 or null"),
    )
    for name, ok, accepted in rules:
        if not ok:
            raise ConfigError(
                f"Invalid value for {prefix}.{name}: expected {accepted}. "
                f"Received: {prefix}.{name}={getattr(cfg, name)!r}"
            )
    inspect_source(cfg.source, f"{prefix}.source")
    if cfg.validation_source:
        inspect_source(cfg.validation_source, f"{prefix}.validation_source")


def evaluation_arrays(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Returns the examples to evaluate on: the test split where the source has one
    (built-in domains, .npz with x_test, `validation_source`), else every example."""
    data = load_labelled(cfg)
    has_test = cfg.source in BUILTIN or bool(cfg.validation_source)
    if not has_test and cfg.source.endswith(".npz"):
        with np.load(cfg.source, allow_pickle=False) as npz:
            has_test = "x_test" in npz
    if has_test:
        return data.x_val, data.y_val, data.class_names
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    return x, y, data.class_names


def load_labelled(cfg: DataConfig) -> LabelledData:
    """Reads the source (and `validation_source`) of `cfg` into arrays.

    Raises:
        ConfigError: a missing path, no labels, or a validation source whose classes
            differ from the training source.
    """
    x_tr, y_tr, x_va, y_va, names = _read(cfg.source, cfg)
    if cfg.validation_source:
        vnames = inspect_source(cfg.validation_source, "data.validation_source")
        if vnames != names:
            raise ConfigError(
                f"data.validation_source has classes {vnames}, data.source has {names}."
            )
        a, b, c, d, _ = _read(cfg.validation_source, cfg)
        x_va, y_va = np.concatenate([a, c]), np.concatenate([b, d])
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise ConfigError(
                f"Expected data.limit >= 1 or null. Received: {cfg.limit}"
            )
        x_tr, y_tr = x_tr[: cfg.limit], y_tr[: cfg.limit]
        x_va, y_va = x_va[: cfg.limit], y_va[: cfg.limit]
    return LabelledData(
        x_tr, np.asarray(y_tr, "int32"), x_va, np.asarray(y_va, "int32"), list(names)
    )

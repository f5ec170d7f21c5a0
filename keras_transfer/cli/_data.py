"""Data sources of the config files: built-in digits domains, image folders, .npz.

`inspect_source` is cheap (no TensorFlow): it checks that a source exists and returns
its class names, so a bad config fails before any run directory or model exists.
`load_labelled` then reads the examples into numpy arrays, except image folders
whose decoded size passes `STREAM_BYTES`: those come back as
`keras_transfer.data.folders.ImageFiles`, array-likes that `from_arrays` streams from
disk (parallel decode, prefetch) and that decode only what is indexed.

(Just over 400 lines on purpose: checking a source before a run and reading it during
one share the same kinds, errors and size rules; apart they would drift.)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.cli._npz import (
    check_finite_inputs,
    npz_class_names,
    npz_label_ids,
)
from keras_transfer.config import ConfigError, DataConfig

BUILTIN = ("digits", "digits_target")
# As `keras_transfer.data.folders.IMAGE_EXTS` (not imported: it loads TensorFlow).
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class LabelledData:
    """Arrays of one labelled source: train and validation splits plus class names.

    For an image folder over `STREAM_BYTES`, `x_train` and `x_val` are
    `keras_transfer.data.folders.ImageFiles` (array-likes read from disk on use).
    """

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
        return npz_class_names(npz, source, field)


def class_ids(names: list[str], known: list[str], refusal: str) -> np.ndarray:
    """The index in ``known`` of each of ``names`` (data classes matched by name).

    Args:
        names: the data's class names, in its id order.
        known: the class names the ids must refer to (a model's, a source's).
        refusal: the error message, with ``{unknown}`` and ``{known}`` fields.

    Raises:
        ConfigError: a name not in ``known`` (``refusal``, formatted).
    """
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(refusal.format(unknown=unknown, known=known))
    return np.asarray([known.index(n) for n in names], "int32")


def check_num_classes(
    num_classes: int | None,
    class_names: list[str],
    field: str,
    source: str = "model.num_classes",
) -> int:
    """Returns the number of classes, raising if the config disagrees with the data.

    ``source`` names where ``num_classes`` came from: the config field (told how to
    fix it), or e.g. ``"the teacher (distillation.teacher)"``, a model's output.
    """
    if num_classes is not None and num_classes != len(class_names):
        shown = f"{', '.join(class_names[:12])}{'...' if len(class_names) > 12 else ''}"
        fix = (
            f"Set model.num_classes to {len(class_names)} or null (inferred)."
            if source == "model.num_classes"
            else f"Give data of its {num_classes} classes, or another model."
        )
        what = (
            f"model.num_classes={num_classes}"
            if source == "model.num_classes"
            else f"{source} has {num_classes} classes, which"
        )
        raise ConfigError(
            f"{what} does not match the data: {field} has {len(class_names)} "
            f"classes ({shown}). {fix}"
        )
    return len(class_names)


def _builtin(source: str, size: int, seed: int):
    from keras_transfer.datasets import digits_domains

    src, tgt = digits_domains(size=size, seed=seed)
    return src if source == "digits" else tgt


# Decoded folders above this many bytes stream from disk (`ImageFiles`) instead of
# being read into memory.
STREAM_BYTES = 512 << 20


def _corrupt_error(file: str, field: str, why: str) -> ConfigError:
    return ConfigError(
        f"Cannot read image file {file!r} (under {field}): {why}. Remove or replace "
        "it, or set data.skip_corrupt: true to skip unreadable files."
    )


def _warn_skipped(path: str, skipped: list[str]) -> None:
    names = ", ".join(os.path.relpath(f, path) for f in skipped[:10])
    more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    logging.getLogger("keras_transfer").warning(
        "skipped %d unreadable files: %s%s", len(skipped), names, more
    )


def _read_folder(
    path: str,
    size: int,
    skip_corrupt: bool = False,
    field: str = "data.source",
    unlabelled: bool = False,
    stream: bool | str = "auto",
) -> tuple[Any, np.ndarray, list[str]]:
    """Reads a class folder (or, `unlabelled`, every image under `path`, labels 0
    and no classes): a uint8 array, or `ImageFiles` (streamed) when the decoded
    images exceed `STREAM_BYTES` (``stream="auto"``), always (True) or never
    (False). Unreadable files are named (or skipped with `skip_corrupt`) before
    anything trains."""
    from keras_transfer.data import folders
    from keras_transfer.progress import Progress

    if unlabelled:
        classes = []
        files = folders.list_all_image_files(path)
        labels = np.zeros(len(files), "int32")
    else:
        classes = _folder_classes(path, field)
        files, labels, _ = folders.list_image_files(path, classes)
    bad = folders.unreadable_headers(files)
    if bad and not skip_corrupt:
        raise _corrupt_error(
            str(files[bad[0]]), field, "not a JPEG, PNG, GIF or BMP image"
        )
    skipped = [str(files[i]) for i in bad]
    keep = np.setdiff1d(np.arange(len(files)), bad)
    files, labels = files[keep], labels[keep]
    if not len(files):
        if skipped:
            _warn_skipped(path, skipped)
        raise ConfigError(f"No images ({', '.join(IMAGE_EXTS)}) found under {path!r}.")
    large = len(files) * size * size * 3 > STREAM_BYTES
    if stream is True or (stream == "auto" and large):
        if skipped:
            _warn_skipped(path, skipped)
        logging.getLogger("keras_transfer").info(
            "streaming %d images from %s (%s)",
            len(files),
            path,
            f"over {STREAM_BYTES >> 20} MiB decoded" if large else "stream: true",
        )
        lazy = folders.ImageFiles(files, (size, size), skip_corrupt=skip_corrupt)
        return lazy, labels, classes
    with Progress(len(files), f"reading {path}", min_interval=2.0) as bar:
        x, failed = folders.decode_files(files, (size, size), on_batch=bar.update)
    if failed and not skip_corrupt:
        raise _corrupt_error(str(files[failed[0]]), field, "its image data is damaged")
    skipped += [str(files[i]) for i in failed]
    if skipped:
        _warn_skipped(path, skipped)
    labels = np.delete(labels, failed)
    if not len(x):
        raise ConfigError(f"No images ({', '.join(IMAGE_EXTS)}) found under {path!r}.")
    return x, labels, classes


def is_unlabelled(source: str, field: str = "data.source") -> bool:
    """Whether `source` holds inputs without labels (no TensorFlow): a folder whose
    images lie directly in it (no class sub-folders), or a .npz with inputs and no
    label array (`y`, `y_train`, `y_test`, `class_names`). Built-in domains are
    labelled.

    Raises:
        ConfigError: the path is empty, missing or of an unsupported kind.
    """
    kind = _kind(source, field)
    if kind == "builtin":
        return False
    if kind == "folder":
        entries = list(os.scandir(source))
        return not any(e.is_dir() for e in entries) and any(
            Path(e.name).suffix.lower() in IMAGE_EXTS for e in entries
        )
    with np.load(source, allow_pickle=False) as npz:
        return not any(k in npz for k in ("y", "y_train", "y_test", "class_names"))


def load_unlabelled(cfg: DataConfig, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of an unlabelled source (`is_unlabelled`), as ``(train, held_out)``.

    A folder is read at ``cfg.image_size`` as a class folder is (streamed from disk
    as `ImageFiles` when large, `skip_corrupt` honoured); a .npz gives its ``x`` (or
    ``x_train``, plus ``x_test``). A seeded shuffle (``cfg.seed``) holds out
    ``cfg.validation_split`` of them (for plots and export checks, never as labels);
    ``cfg.limit`` caps the rest.

    Raises:
        ConfigError: no inputs, or an unreadable image (named in the message).
    """
    if _kind(cfg.source, field) == "folder":
        x, _, _ = _read_folder(
            cfg.source,
            cfg.image_size,
            cfg.skip_corrupt,
            field,
            unlabelled=True,
            stream=cfg.stream,
        )
    else:
        with np.load(cfg.source, allow_pickle=False) as npz:
            keys = [k for k in ("x", "x_train", "x_test") if k in npz]
            if not keys:
                raise ConfigError(
                    f"{field}={cfg.source!r} has no inputs: expected an array 'x' or "
                    f"'x_train' (found {sorted(npz.files)})."
                )
            x = np.concatenate([npz[k] for k in keys])
            check_finite_inputs(x, cfg.source, "/".join(keys))
    x = x[np.random.default_rng(cfg.seed).permutation(len(x))]
    n_held = int(round(len(x) * cfg.validation_split))
    held, rest = x[:n_held], x[n_held:]
    if cfg.limit:
        rest = rest[: cfg.limit]
    if not len(rest):
        raise ConfigError(
            f"{field}={cfg.source!r} leaves no input to train on after holding out "
            f"validation_split={cfg.validation_split} of {len(x)}."
        )
    return rest, held if len(held) else rest[:300]


def read_images(
    path: str, size: int, field: str = "inputs"
) -> tuple[np.ndarray, list[str]]:
    """Reads one image file or every image under a folder; returns (x, file names).

    Images are decoded as for training (`keras_transfer.data.folders.decode`).

    Raises:
        ConfigError: no images, or an unreadable image (named in the message, with
            `field`, the config field that gave `path`).
    """
    from keras_transfer.data import folders

    p = Path(path)
    files = (
        [p]
        if p.is_file()
        else sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
    )
    if not files:
        raise ConfigError(f"No images found at {field}={path!r}.")
    names = [str(f) for f in files]
    bad = folders.unreadable_headers(names)
    if bad:
        raise ConfigError(
            f"Cannot read image file {names[bad[0]]!r} (under {field}): not a JPEG, "
            "PNG, GIF or BMP image. Remove or replace it."
        )
    x, failed = folders.decode_files(names, (size, size))
    if failed:
        raise ConfigError(
            f"Cannot read image file {names[failed[0]]!r} (under {field}): its image "
            "data is damaged. Remove or replace it."
        )
    return x, names


def _split(x: Any, y: np.ndarray, fraction: float, seed: int):
    """Holds out `fraction` of every class (stratified), shuffled with `seed`."""
    from keras_transfer.data.folders import stratified_split

    if not 0.0 <= fraction < 1.0:
        raise ConfigError(
            f"Expected data.validation_split in [0, 1). Received: {fraction}"
        )
    train, val = stratified_split(y, fraction, seed)
    return x[train], y[train], x[val], y[val]


def _concatenate(parts: list) -> Any:
    """`np.concatenate`, keeping streamed folders (`ImageFiles`) lazy."""
    from keras_transfer.data.folders import ImageFiles

    if any(isinstance(p, ImageFiles) for p in parts):
        return ImageFiles.concatenate(parts)
    return np.concatenate(parts)


def _read(source: str, cfg: DataConfig):
    """Returns (x_train, y_train, x_val, y_val, class_names) of one source."""
    kind = _kind(source, "data.source")
    names = inspect_source(source)
    if kind == "builtin":
        split = _builtin(source, cfg.image_size, cfg.seed)
        return split.x_train, split.y_train, split.x_test, split.y_test, names
    if kind == "folder":
        x, y, names = _read_folder(
            source, cfg.image_size, cfg.skip_corrupt, "data.source", stream=cfg.stream
        )
        return (*_split(x, y, cfg.validation_split, cfg.seed), names)
    with np.load(source, allow_pickle=False) as npz:
        if "x_train" in npz:
            keys = ("x_train", "y_train", "x_test", "y_test")
        elif "x" in npz and "y" in npz:
            keys = ("x", "y")
        else:
            raise ConfigError(
                f"{source!r} needs arrays x and y (or x_train, y_train, x_test, "
                f"y_test). Found: {sorted(npz.files)}"
            )
        missing = [k for k in keys if k not in npz]
        if missing:
            raise ConfigError(
                f"{source!r} has x_train but not {missing}: expected x_train, "
                f"y_train, x_test and y_test. Found: {sorted(npz.files)}"
            )
        arrays = []
        for key in keys:
            a = npz[key]
            if key.startswith("x"):
                check_finite_inputs(a, source, key)
            else:
                a = npz_label_ids(a, names, source, key)
            arrays.append(a)
    if len(arrays) == 4:
        return (*arrays, names)
    return (*_split(arrays[0], arrays[1], cfg.validation_split, cfg.seed), names)


def check_data_config(
    cfg: DataConfig,
    prefix: str = "data",
    model_size: bool = False,
    unlabelled_ok: bool = False,
) -> None:
    """Checks the numeric fields of a `DataConfig` (no data is read).

    Args:
        cfg: DataConfig.
        prefix: str. The config section, for messages. Defaults to `"data"`.
        model_size: bool. Accept `image_size: null` (the model's input size).
        unlabelled_ok: bool. Accept a source without labels (`is_unlabelled`:
            `adapt`'s target). Defaults to False.

    Raises:
        ConfigError: a field out of range, named with `prefix`.
    """
    size_ok = (model_size and cfg.image_size is None) or (
        cfg.image_size is not None and cfg.image_size >= 8
    )
    rules = (
        ("image_size", size_ok, "an int >= 8" + (" or null" if model_size else "")),
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
    if not (unlabelled_ok and is_unlabelled(cfg.source, f"{prefix}.source")):
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
    x = _concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    return x, y, data.class_names


def load_labelled(cfg: DataConfig) -> LabelledData:
    """Reads the source (and `validation_source`) of `cfg` into arrays.

    Raises:
        ConfigError: a missing path, no labels, or a validation source whose classes
            differ from the training source.
    """
    # With a separate validation source nothing of the training source is held
    # out (validation_split would only throw that part away).
    whole = dataclasses.replace(cfg, validation_split=0.0)
    x_tr, y_tr, x_va, y_va, names = _read(
        cfg.source, whole if cfg.validation_source else cfg
    )
    if cfg.validation_source:
        vnames = inspect_source(cfg.validation_source, "data.validation_source")
        ids = class_ids(
            vnames,
            list(names),
            "data.validation_source has classes {unknown} that data.source does "
            "not have (its classes: {known}): validation examples must be of all "
            "or some of the training classes, named alike.",
        )
        a, b, c, d, _ = _read(cfg.validation_source, cfg)
        x_va, y_va = _concatenate([a, c]), ids[np.concatenate([b, d])]
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


def model_image_size(model: Any) -> int | None:
    """The square image size a model takes (`(None, H, H, C)` input), else None."""
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4:
        return None
    height, width = shape[1], shape[2]
    if height is None or height != width:
        return None
    return int(height)


def resolve_image_size(
    cfg: DataConfig, model_size: int | None, field: str, model_path: str
) -> DataConfig:
    """Returns `cfg` with `image_size` set to the model's input size.

    Args:
        cfg: DataConfig. `image_size` None means "the model's".
        model_size: int or None. From `model_image_size` (None: unknown).
        field: str. The config field, for messages (e.g. `data.image_size`).
        model_path: str. The model, for messages.

    Raises:
        ConfigError: an explicit `image_size` that differs from the model's, or
            none given and the model's size is unknown.
    """
    if cfg.image_size is None:
        if model_size is None:
            raise ConfigError(
                f"Cannot tell the input size of {model_path!r} (not a square image "
                f"input); set {field}."
            )
        return dataclasses.replace(cfg, image_size=model_size)
    if model_size is not None and cfg.image_size != model_size:
        raise ConfigError(
            f"{field}={cfg.image_size} does not match the model: {model_path!r} "
            f"takes {model_size}x{model_size} images. Remove {field} (the model's "
            f"size is used) or set it to {model_size}."
        )
    return cfg


def run_config(model_path: str) -> dict | None:
    """The resolved `config.yaml` of the run directory holding `model_path`, if any."""
    import yaml

    path = Path(model_path).resolve().parent / "config.yaml"
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return config if isinstance(config, dict) else None


def run_image_size(model_path: str) -> int | None:
    """`data.image_size` (or `source.image_size`) of the model's run, if any."""
    config = run_config(model_path) or {}
    for key in ("data", "source"):
        section = config.get(key)
        if isinstance(section, dict) and isinstance(section.get("image_size"), int):
            return section["image_size"]
    return None

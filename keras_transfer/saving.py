"""`load_model`: load a `.keras` file written by keras-transfer, in any process.

Keras finds the classes of a `.keras` file in its registry of serializable objects,
and a `keras_transfer` class is in that registry only once the module defining it has
been imported. `load_model` imports every such module first (one explicit list, kept
complete by a test), then calls `keras.saving.load_model`, and turns the usual
mistakes (a missing file, a corrupt file, an export folder) into messages that say
what to pass instead. `save_model` (and `save_model_atomically`, its old name) and
`write_json_atomically` write a file whole or not at all (a temporary file, then one
rename).

Which layers are frozen is part of a model a user trains further, but not every
layer keeps it in a `.keras` file: KerasHub rebuilds a backbone from its
constructor arguments, so its layers' `trainable` flags (and keras-transfer's mark
on BatchNorm layers whose statistics were never trained) come back as defaults.
`save_model` adds a record of every layer's flags to the archive (a
`keras_transfer/trainable.json` member, which Keras ignores), and `load_model`
puts them back before Keras rebuilds the optimizer, so the optimizer state saved
with a compiled model loads too.

Examples:
```python
import keras_transfer as kt
# kt.save_model(model, "runs/first/model.keras")
# model = kt.load_model("runs/first/model.keras")
```
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

from keras_transfer._lazy_registry import SERIALIZABLE
from keras_transfer.trainability import apply_trainable_record, trainable_record

__all__ = [
    "REGISTERING_MODULES",
    "TRAINABLE_RECORD",
    "load_model",
    "register_all",
    "save_model",
    "save_model_atomically",
    "write_json_atomically",
]

logger = logging.getLogger("keras_transfer")

#: The archive member of a `.keras` file in which `save_model` records every
#: layer's `trainable` flag (`trainability.trainable_record`).
TRAINABLE_RECORD = "keras_transfer/trainable.json"

# Every module of keras_transfer that registers a class with
# `keras.saving.register_keras_serializable`, read off the one table of those classes
# (`_lazy_registry.SERIALIZABLE`). tests/test_saving.py walks the package and fails
# when a registering module or class is missing there.
REGISTERING_MODULES: tuple[str, ...] = tuple(sorted(set(SERIALIZABLE.values())))


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Saves `model` as a `.keras` file, whole or not at all, with its frozen layers.

    Keras writes to a temporary `.keras` file next to `path` (its folder is created
    if missing), which then replaces `path` in one step: an interrupted save leaves
    the previous file as it was. The archive also records every layer's `trainable`
    flag (`TRAINABLE_RECORD`), which `keras_transfer.load_model` restores: a
    KerasHub backbone frozen whole or to its top N layers comes back frozen the same
    way, and a compiled model's optimizer state loads. `keras.saving.load_model`
    reads the file too (ignoring the record).
    The CLI saves every model it writes this way.

    Args:
        model: keras.Model.
        path: str or PathLike. The file, ending in `.keras`.

    Returns:
        The path, as a `Path`.

    Raises:
        ValueError: `path` does not end in `.keras`.

    Examples:
    ```python
    import os, tempfile
    import keras_transfer as kt
    from keras_transfer._backend import keras
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.Dense(2)])
    model.layers[0].trainable = False
    path = kt.save_model(model, os.path.join(tempfile.mkdtemp(), "model.keras"))
    assert not kt.load_model(path).layers[0].trainable
    ```
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(
            f"Expected a path ending in '.keras' (the Keras v3 format). Received: "
            f"{str(path)!r}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(TRAINABLE_RECORD, json.dumps(trainable_record(model)))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_model_atomically(model: Any, path: str | os.PathLike) -> None:
    """`save_model` under its earlier name (kept for existing callers)."""
    save_model(model, path)


def write_json_atomically(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as JSON to `path` (parents created) whole or not at all.

    Values JSON does not know (numpy scalars) are written as floats.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float))
    os.replace(tmp, path)


def register_all() -> None:
    """Imports every module that registers keras-transfer's serializable classes.

    A module whose optional third-party dependency is not installed is skipped (a
    model that needs it fails to load with Keras's own message); an import error
    inside keras_transfer itself is raised.
    """
    for name in REGISTERING_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as err:
            if (err.name or "").startswith("keras_transfer"):
                raise


def _describe_folder(path: Path) -> str:
    """What an export/run folder is, and what to pass instead of it."""
    if (path / "saved_model.pb").exists():
        return (
            f"{str(path)!r} is a SavedModel export folder, not a .keras file. Load it "
            "with tf.saved_model.load(path) (or pass it to `keras-transfer predict`), "
            "or pass the .keras model it was exported from."
        )
    if (path / "model.tflite").exists():
        return (
            f"{str(path)!r} is a TFLite export folder, not a .keras file. Load it "
            "with keras_transfer.load_tflite(path) (or pass it to `keras-transfer "
            "predict`), or pass the .keras model it was exported from."
        )
    if (path / "model.keras").exists():
        return (
            f"{str(path)!r} is a folder (a run directory). Pass the model file "
            f"inside it: {str(path / 'model.keras')!r}."
        )
    return f"{str(path)!r} is a folder. Expected a .keras model file."


def check_model_file(path: str | os.PathLike) -> Path:
    """Checks that `path` is a readable `.keras` (zip) or `.h5` file.

    Args:
        path: str or PathLike. The model file.

    Returns:
        The path, as a `Path`.

    Raises:
        FileNotFoundError: nothing exists at `path`.
        IsADirectoryError: `path` is a folder (the message says which kind).
        ValueError: the file is not a valid `.keras` archive.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(_describe_folder(path))
    if not path.exists():
        raise FileNotFoundError(
            f"No model file at {str(path)!r}. Expected a .keras file written by "
            "model.save() or `keras-transfer train` (runs/<name>/model.keras)."
        )
    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"{str(path)!r} is not a valid .keras file (not a zip archive; "
                f"{path.stat().st_size} bytes). It may be truncated or overwritten: "
                "save the model again or pass another file."
            )
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        if "config.json" not in names:
            raise ValueError(
                f"{str(path)!r} is not a valid .keras file (the archive has no "
                f"config.json; found {sorted(names)[:5]}). Save the model again or "
                "pass another file."
            )
    return path


def load_model(
    path: str | os.PathLike,
    *,
    compile: bool = True,  # noqa: A002 - the keras.saving.load_model argument
    safe_mode: bool = True,
    custom_objects: dict[str, Any] | None = None,
) -> Any:
    """Loads a `.keras` model that may hold keras-transfer layers, models or losses.

    Registers every serializable class of the package (see `REGISTERING_MODULES`),
    then calls `keras.saving.load_model`. Works in a fresh process that imported
    nothing but `keras_transfer`.

    Args:
        path: str or PathLike. A `.keras` file (or a legacy `.h5`).
        compile: bool. Restore the optimizer, loss and metrics (and the optimizer
            state saved with the model). Defaults to True.
        safe_mode: bool. Refuse to deserialize Python lambdas (arbitrary code).
            Defaults to True.
        custom_objects: dict or None. Your own classes, by name. Defaults to None.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: nothing exists at `path`.
        IsADirectoryError: `path` is a folder (an export or run directory; the
            message says which file to pass).
        ValueError: the file is not a valid `.keras` archive.

    Examples:
    ```python
    import tempfile, os
    import numpy as np
    import keras_transfer as kt
    model = kt.build_classifier("keras_applications:MobileNetV3Small", 2,
                                weights=None, input_shape=(32, 32, 3))
    path = os.path.join(tempfile.mkdtemp(), "model.keras")
    model.save(path)
    reloaded = kt.load_model(path)
    x = np.zeros((1, 32, 32, 3), "float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    ```
    """
    path = check_model_file(path)
    register_all()
    from keras_transfer._backend import keras

    record, top = _read_record(path)
    if record is None:
        hub = _keras_hub_backbones(top) if compile and top else []
        if hub and top.get("compile_config"):
            warnings.warn(
                f"{str(path)!r} was written by `model.save`, which does not keep a "
                f"KerasHub backbone's frozen layers ({', '.join(hub)}): all of its "
                "layers load trainable, and Keras may skip the saved optimizer state. "
                "Before training it further, set its trainability again "
                "(`keras_transfer.set_trainable(model, unfreeze_depth)`); save with "
                "`keras_transfer.save_model` to keep it.",
                UserWarning,
                stacklevel=2,
            )
        return keras.saving.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    name = top.get("registered_name") or top.get("class_name")
    restorer = _restorer(name, top, record) if name else None
    scope = {} if restorer is None else {name: restorer}
    with keras.saving.CustomObjectScope(scope):
        model = keras.saving.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    if restorer is None or not restorer.applied:
        # The top-level class could not be wrapped: put the flags back now; a
        # compiled model then needs an optimizer over its new trainable weights.
        changed = apply_trainable_record(model, record)
        if changed and compile and top.get("compile_config"):
            model.compile_from_config(top["compile_config"])
            logger.warning(
                "load_model: %s: layers' trainable flags restored after loading; the "
                "model was recompiled with a fresh optimizer (its saved state was "
                "not loaded).",
                str(path),
            )
    return model


def _read_record(path: Path) -> tuple[dict | None, dict | None]:
    """The trainable record of a `.keras` file (None if it has none) and its config."""
    if path.suffix != ".keras":
        return None, None
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        if TRAINABLE_RECORD not in archive.namelist():
            return None, config
        record = json.loads(archive.read(TRAINABLE_RECORD))
    return record, config


def _keras_hub_backbones(config: Any) -> list[str]:
    """Class names of the KerasHub backbones anywhere in a saved model's config."""
    found: list[str] = []
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.get("registered_name")
            if isinstance(name, str) and name.startswith("keras_hub>"):
                if str(item.get("class_name", "")).endswith("Backbone"):
                    found.append(item["class_name"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sorted(set(found))


def _restorer(name: str, top: dict, record: dict) -> Any:
    """A stand-in for the file's top-level class whose `from_config` builds the
    model with the real class, then restores the recorded flags -- before Keras
    compiles it and builds the optimizer. None when the class cannot be found."""
    from keras_transfer._backend import keras

    real = keras.saving.get_registered_object(name)
    if real is None and top.get("module") and top.get("class_name"):
        try:
            real = getattr(importlib.import_module(top["module"]), top["class_name"])
        except (ImportError, AttributeError):
            real = None
    if real is None or not hasattr(real, "from_config"):
        return None

    class _Restorer:
        applied = False
        depth = 0

        @classmethod
        def from_config(cls, config: dict, custom_objects: Any = None) -> Any:
            # Nested objects of the same class pass through here too (their
            # configs are deserialized inside the top-level one's): only the
            # outermost call restores.
            cls.depth += 1
            try:
                model = real.from_config(config)
            finally:
                cls.depth -= 1
            if cls.depth == 0 and not cls.applied:
                apply_trainable_record(model, record)
                cls.applied = True
            return model

    return _Restorer

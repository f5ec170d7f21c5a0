"""`load_model`: load a `.keras` file written by keras-transfer, in any process.

Keras finds the classes of a `.keras` file in its registry of serializable objects,
and a `keras_transfer` class is in that registry only once the module defining it has
been imported. `load_model` imports every such module first (one explicit list, kept
complete by a test), then calls `keras.saving.load_model`, and turns the usual
mistakes (a missing file, a corrupt file, an export folder) into messages that say
what to pass instead. `save_model_atomically` and `write_json_atomically` write a
file whole or not at all (a temporary file, then one rename).

Examples:
```python
import keras_transfer as kt
# model = kt.load_model("runs/first/model.keras")
```
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

__all__ = [
    "REGISTERING_MODULES",
    "load_model",
    "register_all",
    "save_model_atomically",
    "write_json_atomically",
]

# Every module of keras_transfer that registers a class with
# `keras.saving.register_keras_serializable`. tests/test_saving.py walks the package
# and fails when a registering module is missing here.
REGISTERING_MODULES: tuple[str, ...] = (
    "keras_transfer.adaptation.combined",
    "keras_transfer.adaptation.label_shift",
    "keras_transfer.adaptation.methods",
    "keras_transfer.adaptation.model",
    "keras_transfer.adaptation.schedules",
    "keras_transfer.adaptation.target_methods",
    "keras_transfer.adaptation.weighted",
    "keras_transfer.augment",
    "keras_transfer.backbones.applications",
    "keras_transfer.backbones.tfhub",
    "keras_transfer.distillation",
    "keras_transfer.layers.gradient_reversal",
    "keras_transfer.text.encoder",
    "keras_transfer.text.export",
)


def save_model_atomically(model: Any, path: str | os.PathLike) -> None:
    """Saves `model` to the `.keras` file `path` whole or not at all.

    Keras writes to a temporary `.keras` file next to `path`, which then replaces
    `path` in one step: an interrupted save leaves the previous file as it was.
    """
    path = os.fspath(path)
    stem, ext = os.path.splitext(path)
    tmp = f"{stem}.tmp{ext}"
    model.save(tmp)
    os.replace(tmp, path)


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

    return keras.saving.load_model(
        path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
    )
